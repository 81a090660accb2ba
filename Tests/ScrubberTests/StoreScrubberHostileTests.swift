import Distribution
import Foundation
import Glibc
import Scrubber
import Storage
import StorageDriver
import TestSupport
import Testing
import StorageTesting

/// `blobfs verify` over a hostile store (F9): a directory it cannot enter is one problem line and
/// the scrub goes on; what it could not reach is never called intact; a data file that is not a
/// regular file is named so.
@Suite struct StoreScrubberHostileTests {
    /// Repositories `aaa` and `zzz`, one blob each, on the filesystem driver.
    struct Store {
        let fixture: StoreFixture
        let a: Descriptor
        let z: Descriptor
        var root: String { fixture.directory!.path }

        /// `<root>/docker/registry/v2/repositories/<name>/_layers…` on disk.
        func layers(_ name: String, _ rest: String = "") -> String {
            "\(root)/docker/registry/v2/repositories/\(name)/_layers" + rest
        }
    }

    func store() throws -> Store {
        let fixture = try StoreFixture.make("filesystem")
        let a = try upload(seededBytes(count: 1000, seed: 71), to: try fixture.registry.repository("aaa"))
        let z = try upload(seededBytes(count: 2000, seed: 72), to: try fixture.registry.repository("zzz"))
        return Store(fixture: fixture, a: a, z: z)
    }

    func verify(_ store: Store, repository: String? = nil) throws -> ScrubReport {
        try StoreScrubber(registry: store.fixture.registry).scrub(repository: repository.map { try RepositoryName($0) })
    }

    /// Replaces the directory at `path` with a symbolic link to a copy of it outside the store.
    func replaceWithSymlink(_ path: String, outside: String) throws {
        #expect(rename(path, outside) == 0, "rename \(path): \(Errno(errno))")
        #expect(symlink(outside, path) == 0, "symlink \(path): \(Errno(errno))")
    }

    @Test func aSymlinkedLayersDirectoryIsOneProblemAndTheScrubGoesOn() throws {
        let s = try store()
        defer { s.fixture.close() }
        let outside = try TemporaryDirectory()
        defer { outside.remove() }
        try replaceWithSymlink(s.layers("aaa"), outside: outside.path + "/layers")
        try s.fixture.driver.putContent(PathMapper.path(.layerLink(try RepositoryName("zzz"), s.z.digest)), Array("garbage".utf8))

        let report = try verify(s)
        #expect(report.problems.map(\.kind) == [.unreachable, .garbageLink], "\(report.problems)")
        let unreachable = try #require(report.problems.first)
        #expect(unreachable.path == PathMapper.path(.layers(try RepositoryName("aaa"))))
        #expect(unreachable.detail.contains("symbolic link") && unreachable.detail.contains("not checked"), "\(unreachable)")
        #expect(report.problems.last?.repository == (try RepositoryName("zzz")), "the repository after it is still checked")
        #expect(report.repositoriesChecked == 2)
        #expect(report.blobsChecked == 2, "the blob phase is whole")
        #expect(!report.isIntact)

        // The same repository alone: a problem, not "no such repository" and never intact.
        let alone = try verify(s, repository: "aaa")
        #expect(alone.problems.map(\.kind) == [.unreachable])
    }

    @Test(arguments: ["/sha256", "/sha256/<hex>"])
    func aRepositoryWhoseLinksCannotBeReachedIsNeverIntact(symlinked: String) throws {
        let s = try store()
        defer { s.fixture.close() }
        let outside = try TemporaryDirectory()
        defer { outside.remove() }
        let relative = symlinked.replacingOccurrences(of: "<hex>", with: s.a.digest.hex)
        try replaceWithSymlink(s.layers("aaa", relative), outside: outside.path + "/moved")

        for scope in ["aaa", nil] {
            let report = try verify(s, repository: scope)
            #expect(report.problems.map(\.kind) == [.unreachable], "\(scope ?? "whole store"): \(report.problems)")
            #expect(report.problems.first?.path.value.hasSuffix("/repositories/aaa/_layers\(relative)") == true)
            #expect(report.problems.first?.detail.contains("symbolic link (never followed)") == true)
            if symlinked.hasSuffix("<hex>") { #expect(report.problems.first?.digest == s.a.digest) }
        }
    }

    @Test(arguments: ["fifo", "directory", "symlink"])
    func aDataFileThatIsNotARegularFileIsNamedSo(kind: String) throws {
        let s = try store()
        defer { s.fixture.close() }
        let data = s.root + PathMapper.path(.blobData(s.a.digest)).value
        #expect(unlink(data) == 0)
        switch kind {
        case "fifo": #expect(mkfifo(data, 0o644) == 0)
        case "directory": #expect(mkdir(data, 0o755) == 0)
        default: #expect(symlink(s.root + PathMapper.path(.blobData(s.z.digest)).value, data) == 0)
        }
        for scope in [nil, "aaa"] {
            let report = try verify(s, repository: scope)
            #expect(report.problems.map(\.kind) == [.notARegularFile], "\(kind), \(scope ?? "whole store"): \(report.problems)")
            #expect(report.problems.first?.dataPath == PathMapper.path(.blobData(s.a.digest)))
        }
    }

    @Test func symlinksInTheBlobStoreAndAmongRepositoriesAreReported() throws {
        let s = try store()
        defer { s.fixture.close() }
        let outside = try TemporaryDirectory()
        defer { outside.remove() }
        let prefix = "\(s.root)/docker/registry/v2/blobs/sha256/\(s.z.digest.hex.prefix(2))"
        try replaceWithSymlink(prefix, outside: outside.path + "/prefix")
        #expect(symlink(outside.path, "\(s.root)/docker/registry/v2/repositories/elsewhere") == 0)

        let report = try verify(s)
        let paths = report.problems.filter { $0.kind == .unreachable }.map(\.path.value)
        #expect(paths == [PathMapper.path(.blobs).value + "/sha256/\(s.z.digest.hex.prefix(2))", PathMapper.path(.repositoriesRoot).value + "/elsewhere"], "\(report.problems)")
        #expect(report.problems.map(\.kind) == [.unreachable, .unreachable, .notARegularFile], "zzz's link to the blob behind the link: \(report.problems)")
        #expect(report.repositoriesChecked == 2)
    }
}
