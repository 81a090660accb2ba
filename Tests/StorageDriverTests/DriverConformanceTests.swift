import Foundation
import S3
import StorageDriver
import Testing
import TestSupport

/// One driver under test, with whatever keeps its storage alive.
struct DriverFixture: CustomStringConvertible {
    let driver: any StorageDriver
    let directory: TemporaryDirectory?

    static func make(_ kind: String) async throws -> DriverFixture {
        switch kind {
        case "filesystem":
            let directory = try TemporaryDirectory()
            return DriverFixture(driver: try FilesystemDriver(root: directory.path), directory: directory)
        case "s3", "s3-radosgw":
            // The process's moto or radosgw, under a root directory of this fixture's own.
            let server: S3ServerKind = kind == "s3" ? .moto : .radosgw
            return DriverFixture(driver: try await S3Fixture.driver(on: server, rootDirectory: "/conformance-\(UUID().uuidString)"), directory: nil)
        default:
            return DriverFixture(driver: InMemoryDriver(), directory: nil)
        }
    }

    /// Whether an empty directory exists once created: not in S3, which has only key prefixes.
    var keepsEmptyDirectories: Bool { driver.name != "s3" }

    var description: String { driver.name }

    /// Removes the directory; tests `defer` it, which also keeps the fixture alive until then.
    func close() { directory?.remove() }
}

func path(_ s: String) -> DriverPath { try! DriverPath(s) }

/// The behaviours every driver must share; the storage layer relies on each of them.
@Suite struct DriverConformanceTests {
    static let kinds = ["filesystem", "inmemory", "s3", "s3-radosgw"]
    /// The drivers where a directory exists without files (not S3's).
    static let kindsWithEmptyDirectories = ["filesystem", "inmemory"]

    @Test(arguments: kinds) func putAndGetContent(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        try driver.putContent(path("/a/b/c"), Array("hello".utf8))
        #expect(try driver.getContent(path("/a/b/c")) == Array("hello".utf8))
        try driver.putContent(path("/a/b/c"), Array("bye".utf8))
        #expect(try driver.getContent(path("/a/b/c")) == Array("bye".utf8))
        try driver.putContent(path("/a/empty"), [])
        #expect(try driver.getContent(path("/a/empty")) == [])
        #expect(throws: StorageDriverError.pathNotFound("/a/missing")) { try driver.getContent(path("/a/missing")) }
        #expect(throws: StorageDriverError.self) { try driver.getContent(path("/a/b")) }
        #expect(throws: StorageDriverError.tooLarge("/a/b/c", size: 3, limit: 2)) { try driver.getContent(path("/a/b/c"), limit: 2) }
    }

    @Test(arguments: kinds) func statReportsKindAndSize(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        try driver.putContent(path("/d/f"), [1, 2, 3])
        let file = try driver.stat(path("/d/f"))
        #expect(file.kind == .file && file.size == 3)
        #expect(try driver.stat(path("/d")).kind == .directory)
        #expect(throws: StorageDriverError.pathNotFound("/d/g")) { try driver.stat(path("/d/g")) }
        #expect(throws: StorageDriverError.pathNotFound("/d/f/x")) { try driver.stat(path("/d/f/x")) }
    }

    @Test(arguments: kinds) func writerAppendsAndReaderReadsAtOffsets(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        let p = path("/up/data")
        let writer = try driver.writer(p, append: false)
        #expect(writer.size == 0)
        try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try writer.write($0) }
        try [UInt8](repeating: 8, count: 50).withUnsafeBytes { try writer.write($0) }
        try writer.commit()
        writer.close()
        #expect(writer.size == 150)
        let again = try driver.writer(p, append: true)
        #expect(again.size == 150)
        try [UInt8]([9]).withUnsafeBytes { try again.write($0) }
        again.close()
        let reader = try driver.reader(p)
        #expect(try reader.currentSize() == 151)
        var buffer = [UInt8](repeating: 0, count: 10)
        let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 95) }
        #expect(n == 10 && buffer == [7, 7, 7, 7, 7, 8, 8, 8, 8, 8])
        let tail = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 150) }
        #expect(tail == 1 && buffer[0] == 9)
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 151) } == 0)
        let truncating = try driver.writer(p, append: false)
        #expect(truncating.size == 0)
        truncating.close()
        #expect(try driver.stat(p).size == 0)
    }

    @Test(arguments: kinds) func cancelRemovesTheFile(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        let writer = try driver.writer(path("/x/data"), append: false)
        try [UInt8]([1]).withUnsafeBytes { try writer.write($0) }
        try writer.cancel()
        #expect(throws: StorageDriverError.pathNotFound("/x/data")) { try driver.stat(path("/x/data")) }
        #expect(throws: StorageDriverError.self) { try [UInt8]([1]).withUnsafeBytes { try writer.write($0) } }
    }

    @Test(arguments: kinds) func listIsSortedChildNames(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        for name in ["c", "a", "b/deep/file"] { try driver.putContent(path("/l/\(name)"), []) }
        #expect(try driver.list(path("/l")) == ["a", "b", "c"])
        #expect(try driver.list(path("/l/b")) == ["deep"])
        #expect(throws: StorageDriverError.pathNotFound("/nope")) { try driver.list(path("/nope")) }
    }

    /// A directory that exists on every driver: on S3, where only objects exist, it holds one.
    private func makeDirectory(_ fixture: DriverFixture, _ p: String) throws {
        if fixture.keepsEmptyDirectories { try fixture.driver.createDirectory(path(p)) } else { try fixture.driver.putContent(path(p + "/link"), [1]) }
    }

    /// Every name of `path` as `enumerateNames` hands them over, and how many batches it took.
    private func enumeratedNames(_ driver: any StorageDriver, _ p: DriverPath) throws -> (names: [String], batches: Int) {
        var names: [String] = []
        var batches = 0
        try driver.enumerateNames(in: p) { batch in
            batches += 1
            batch.forEach { names.append(String(decoding: $0, as: UTF8.self)) }
        }
        return (names, batches)
    }

    @Test(arguments: kinds) func enumeratesTheNamesOfADirectoryInBatches(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        // Files, a directory with children, an empty directory: every kind of child, and a name
        // as long as a sha256 link's (64 bytes), a short one and one that starts with a dot.
        // (S3 has no empty directories: there a directory is the prefix of an object's key.)
        for name in ["c", ".hidden", "b/deep/file", String(repeating: "f", count: 64)] { try driver.putContent(path("/e/\(name)"), [1]) }
        if fixture.keepsEmptyDirectories { try driver.createDirectory(path("/e/empty")) }
        let few = try enumeratedNames(driver, path("/e"))
        let expected = ["c", ".hidden", "b", String(repeating: "f", count: 64)] + (fixture.keepsEmptyDirectories ? ["empty"] : [])
        #expect(few.names.sorted() == expected.sorted())
        #expect(few.names.sorted() == (try driver.list(path("/e"))))
        if fixture.keepsEmptyDirectories { #expect(try enumeratedNames(driver, path("/e/empty")).names == []) }
        // More names than one batch holds (a getdents64 buffer; an object listing's page of
        // 1,000): each once, none lost between batches, whatever the batches are.
        let count = fixture.keepsEmptyDirectories ? 3000 : 1100
        let hexes = (0..<count).map { String(format: "%064x", $0) }
        for hex in hexes { try makeDirectory(fixture, "/many/\(hex)") }
        let many = try enumeratedNames(driver, path("/many"))
        #expect(many.names.count == count)
        #expect(Set(many.names) == Set(hexes))
        #expect(many.batches > 1)
        #expect(throws: StorageDriverError.pathNotFound("/nope")) { try enumeratedNames(driver, path("/nope")) }
        #expect(throws: StorageDriverError.self) { try enumeratedNames(driver, path("/e/c")) }
    }

    @Test(arguments: kinds) func anErrorFromTheBatchesStopsTheEnumeration(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        for i in 0..<(fixture.keepsEmptyDirectories ? 2500 : 1100) { try makeDirectory(fixture, "/s/\(String(repeating: "a", count: 60))\(1000 + i)") }
        var batches = 0
        #expect(throws: StorageDriverError.pathNotFound("stop")) {
            try driver.enumerateNames(in: path("/s")) { (_) throws(StorageDriverError) in
                batches += 1
                throw .pathNotFound("stop")
            }
        }
        #expect(batches == 1)
    }

    @Test(arguments: kinds) func readsTheMembersOfChildDirectories(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        try driver.putContent(path("/m/c/link"), [3, 3])
        try driver.putContent(path("/m/a/link"), [])
        try driver.putContent(path("/m/g/link"), [UInt8](repeating: 7, count: 9))
        for name in ["b/other", "d/link/inner", "e"] { try driver.putContent(path("/m/\(name)"), [0]) }
        try driver.createDirectory(path("/m/f"))
        let members = try driver.members(named: "link", in: path("/m"), limit: 8)
        #expect(members.map(\.child) == ["a", "c", "g"])
        #expect(try members[0].content.get() == [])
        #expect(try members[1].content.get() == [3, 3])
        #expect(throws: StorageDriverError.self) { try members[2].content.get() }
        if fixture.keepsEmptyDirectories {
            #expect(try driver.members(named: "link", in: path("/m/f"), limit: 8) == [])
        } else {
            #expect(throws: StorageDriverError.pathNotFound("/m/f")) { try driver.members(named: "link", in: path("/m/f"), limit: 8) }
        }
        #expect(throws: StorageDriverError.pathNotFound("/nope")) { try driver.members(named: "link", in: path("/nope"), limit: 8) }
    }

    @Test(arguments: kinds) func moveCreatesParentsAndReplaces(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        try driver.putContent(path("/src/f"), [1])
        try driver.move(from: path("/src/f"), to: path("/dst/deep/f"))
        #expect(try driver.getContent(path("/dst/deep/f")) == [1])
        #expect(throws: StorageDriverError.pathNotFound("/src/f")) { try driver.stat(path("/src/f")) }
        try driver.putContent(path("/src/g"), [2])
        try driver.move(from: path("/src/g"), to: path("/dst/deep/f"))
        #expect(try driver.getContent(path("/dst/deep/f")) == [2])
        #expect(throws: StorageDriverError.pathNotFound("/src/none")) { try driver.move(from: path("/src/none"), to: path("/dst/x")) }
    }

    @Test(arguments: kinds) func deleteIsRecursive(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        for name in ["a/1", "a/b/2", "a/b/c/3", "keep"] { try driver.putContent(path("/t/\(name)"), [0]) }
        try driver.delete(path("/t/a"))
        #expect(throws: StorageDriverError.pathNotFound("/t/a")) { try driver.stat(path("/t/a")) }
        #expect(try driver.list(path("/t")) == ["keep"])
        try driver.delete(path("/t/keep"))
        #expect(throws: StorageDriverError.pathNotFound("/t/keep")) { try driver.delete(path("/t/keep")) }
    }

    @Test(arguments: kinds) func walkIsDepthFirstSortedAndSkips(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        for name in ["b/2", "a/x/1", "a/y", "c"] { try driver.putContent(path("/w/\(name)"), [0]) }
        var seen: [String] = []
        try driver.walk(path("/w")) { entry in
            seen.append("\(entry.path.value.dropFirst(3)):\(entry.kind == .directory ? "d" : "f")")
            return entry.path.name == "x" ? .skipDirectory : .continue
        }
        #expect(seen == ["a:d", "a/x:d", "a/y:f", "b:d", "b/2:f", "c:f"])
    }
}

@Suite struct DriverDirectoryTests {
    @Test(arguments: DriverConformanceTests.kindsWithEmptyDirectories) func createDirectoryMakesEmptyDirectoriesThatList(kind: String) async throws {
        let fixture = try await DriverFixture.make(kind)
        defer { fixture.close() }
        let driver = fixture.driver
        try driver.createDirectory(path("/r/a/_layers"))
        try driver.createDirectory(path("/r/a/_layers"))  // existing is fine
        #expect(try driver.stat(path("/r/a/_layers")).kind == .directory)
        #expect(try driver.list(path("/r/a")) == ["_layers"])
        var seen: [String] = []
        try driver.walk(path("/r")) { entry in
            seen.append(entry.path.value)
            return .continue
        }
        #expect(seen == ["/r/a", "/r/a/_layers"])
        try driver.putContent(path("/r/file"), [1])
        #expect(throws: StorageDriverError.self) { try driver.createDirectory(path("/r/file")) }
        #expect(throws: StorageDriverError.self) { try driver.createDirectory(path("/r/file/sub")) }
        try driver.delete(path("/r/a"))
        #expect(throws: StorageDriverError.pathNotFound("/r/a")) { try driver.stat(path("/r/a")) }
    }
}
