import Foundation
import StorageDriver
import Testing
import TestSupport

/// What only the on-disk driver must guarantee: confinement to its root and atomic small writes.
@Suite struct FilesystemDriverTests {
    @Test(arguments: [
        "", "/", "relative", "/a/../b", "/..", "/a/./b", "//a", "/a/", "/a b", "/a:b", "/a\\b", "/é", "/a\u{0}b", "/.",
    ])
    func refusesPathsOutsideTheGrammar(value: String) {
        #expect(throws: StorageDriverError.invalidPath(value)) { try DriverPath(value) }
    }

    @Test(arguments: ["", ".", "..", "a/b", "/a", "a b", "a:b", "é", "a\u{0}"])
    func appendingRefusesAComponentOutsideTheGrammar(component: String) throws {
        let base = try DriverPath("/docker/registry/v2")
        #expect(throws: StorageDriverError.invalidPath("/docker/registry/v2/" + component)) { try base.appending(component) }
    }

    @Test func appendingAcceptsOrdinaryComponents() throws {
        let base = try DriverPath("/r")
        for component in ["...", "_layers", "sha256", "a.b-c_D9", ".tmp"] {
            #expect(try base.appending(component).value == "/r/" + component)
        }
    }

    @Test func acceptsTheRegistrysPaths() throws {
        let p = try DriverPath("/docker/registry/v2/repositories/a.b/_layers/sha256/ab/link")
        #expect(p.name == "link")
        #expect(p.parent?.value == "/docker/registry/v2/repositories/a.b/_layers/sha256/ab")
        #expect(try DriverPath("/a").parent == nil)
        #expect(try DriverPath("/...").name == "...")  // three dots is an ordinary name
    }

    @Test func neverFollowsSymbolicLinks() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let outside = try TemporaryDirectory()
        defer { outside.remove() }
        try "secret".write(toFile: outside.path + "/secret", atomically: false, encoding: .utf8)
        let fm = FileManager.default
        try fm.createDirectory(atPath: root.path + "/dir", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root.path + "/dir/file-link", withDestinationPath: outside.path + "/secret")
        try fm.createSymbolicLink(atPath: root.path + "/dir-link", withDestinationPath: outside.path)
        try fm.createSymbolicLink(atPath: root.path + "/dir/inner-link", withDestinationPath: root.path + "/dir")
        let driver = try FilesystemDriver(root: root.path)

        #expect(throws: StorageDriverError.symlinkRefused("/dir/file-link")) { try driver.getContent(path("/dir/file-link")) }
        #expect(throws: StorageDriverError.symlinkRefused("/dir-link/secret")) { try driver.getContent(path("/dir-link/secret")) }
        #expect(throws: StorageDriverError.symlinkRefused("/dir-link/secret")) { try driver.reader(path("/dir-link/secret")) }
        #expect(throws: StorageDriverError.symlinkRefused("/dir-link/secret")) { try driver.stat(path("/dir-link/secret")) }
        #expect(throws: StorageDriverError.self) { try driver.putContent(path("/dir-link/new"), [1]) }
        #expect(throws: StorageDriverError.self) { try driver.writer(path("/dir-link/new2"), append: false) }
        #expect(throws: StorageDriverError.self) { try driver.move(from: path("/dir-link/secret"), to: path("/stolen")) }
        #expect(!fm.fileExists(atPath: outside.path + "/new") && !fm.fileExists(atPath: outside.path + "/new2"))
        #expect(fm.fileExists(atPath: outside.path + "/secret"))

        // Walking reports links as "other" and never descends into them.
        var seen: [String] = []
        try driver.walk(path("/dir")) { entry in
            seen.append("\(entry.path.name):\(entry.kind)")
            return .continue
        }
        #expect(seen == ["file-link:other", "inner-link:other"])

        // Reading the members of child directories never goes through a link, at either level;
        // what it refused is reported, not left out in silence.
        try fm.createDirectory(atPath: root.path + "/m/real", withIntermediateDirectories: true)
        try "x".write(toFile: root.path + "/m/real/secret", atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: root.path + "/m/linked", withDestinationPath: outside.path)
        try fm.createDirectory(atPath: root.path + "/m/inner", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root.path + "/m/inner/secret", withDestinationPath: outside.path + "/secret")
        let members = try driver.members(named: "secret", in: path("/m"), limit: 16)
        #expect(members.map(\.child) == ["inner", "linked", "real"])
        #expect(members[0].content == .failure(.symlinkRefused("/m/inner/secret")))
        #expect(members[1].content == .failure(.symlinkRefused("/m/linked/secret")))
        #expect(try members[2].content.get() == Array("x".utf8))

        // Deleting a tree that holds a link removes the link, not its target.
        try driver.delete(path("/dir"))
        try driver.delete(path("/dir-link"))
        #expect(try String(contentsOfFile: outside.path + "/secret", encoding: .utf8) == "secret")
    }

    @Test func putContentIsAtomicAndLeavesNoTemporaryFile() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let driver = try FilesystemDriver(root: root.path)
        try driver.putContent(path("/r/link"), Array("sha256:old".utf8))
        // Hold the old file open: an in-place rewrite would change what this descriptor reads.
        let handle = try #require(FileHandle(forReadingAtPath: root.path + "/r/link"))
        defer { try? handle.close() }
        try driver.putContent(path("/r/link"), Array("sha256:new".utf8))
        #expect(try handle.readToEnd() == Data("sha256:old".utf8))
        #expect(try driver.getContent(path("/r/link")) == Array("sha256:new".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path + "/r") == ["link"])
    }

    @Test func createsFilesAndDirectoriesWithRegistryModes() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let driver = try FilesystemDriver(root: root.path)
        let old = umask(0o022)
        defer { umask(old) }
        try driver.putContent(path("/m/d/f"), [1])
        let fileMode = try FileManager.default.attributesOfItem(atPath: root.path + "/m/d/f")[.posixPermissions] as? Int
        let dirMode = try FileManager.default.attributesOfItem(atPath: root.path + "/m/d")[.posixPermissions] as? Int
        #expect(fileMode == 0o644)
        #expect(dirMode == 0o755)
    }

    @Test func whatRootCreatesBelongsToTheStoresOwner() throws {
        try #require(geteuid() == 0, "needs root, as CI and the mount tests run")
        let root = try TemporaryDirectory()
        defer { root.remove() }
        #expect(chown(root.path, 65534, 65534) == 0)
        let driver = try FilesystemDriver(root: root.path)
        try driver.putContent(path("/a/b/link"), [1])
        try driver.createDirectory(path("/a/c/_layers"))
        let writer = try driver.writer(path("/a/d/data"), append: false)
        writer.close()
        for created in ["/a", "/a/b", "/a/b/link", "/a/c/_layers", "/a/d/data"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: root.path + created)
            #expect(attributes[.ownerAccountID] as? Int == 65534, "\(created)")
            #expect(attributes[.groupOwnerAccountID] as? Int == 65534, "\(created)")
        }
        // Inherited from the parent, not the root: a root-owned directory keeps root's files.
        #expect(chown(root.path + "/a/b", 0, 0) == 0)
        try driver.putContent(path("/a/b/root-owned"), [1])
        #expect(try FileManager.default.attributesOfItem(atPath: root.path + "/a/b/root-owned")[.ownerAccountID] as? Int == 0)
    }

    @Test func missingRootIsAClearError() {
        #expect(throws: StorageDriverError.io(operation: "open storage root", path: "/nonexistent/blobfs-root", errno: ENOENT)) {
            try FilesystemDriver(root: "/nonexistent/blobfs-root")
        }
    }
}
