import BlobCache
import Distribution
@testable import Storage
import StorageDriver
import Testing
import TestSupport
import StorageTesting

/// What Storage answers about the tree of names, so that the filesystem needs no driver paths:
/// one rule for "is a repository", the components under a prefix, and a cold lookup's cost.
@Suite struct RepositoryTreeTests {
    static let v2 = "/docker/registry/v2/repositories"

    @Test(arguments: StoreFixture.kinds) func aRepositoryIsANameWhoseLayersIsADirectory(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        try store.registry.createRepository(RepositoryName("team/app"))
        try store.registry.createNamePrefix(RepositoryName("team/empty"))
        // A file named _layers, and only _manifests: no repositories.
        try store.driver.putContent(dp("\(Self.v2)/team/file/_layers"), [])
        try store.driver.putContent(dp("\(Self.v2)/only/manifests/_manifests/revisions/x"), [])

        for (name, expected) in [("team/app", true), ("team", false), ("team/empty", false), ("team/file", false), ("only/manifests", false), ("absent", false)] {
            #expect(try store.registry.isRepository(try RepositoryName(name)) == expected, "\(name)")
        }
        #expect(try store.registry.repositories().map(\.value) == ["team/app"], "the catalog uses the same rule")
        for (name, expected) in [("team", true), ("team/app", true), ("team/empty", true), ("only", true), ("absent", false), ("team/app/web", false)] {
            #expect(try store.registry.isNamePrefix(try RepositoryName(name)) == expected, "\(name)")
        }
    }

    @Test(arguments: StoreFixture.kinds) func childComponentsAreTheValidDirectoriesBelowAPrefix(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        for name in ["team/web", "team/app", "library/ubuntu", "team/app/web"] {
            try store.registry.createRepository(RepositoryName(name))
        }
        // Not components: a file, a name outside the grammar, the repository's own `_` directories.
        try store.driver.putContent(dp("\(Self.v2)/team/notes"), [1])
        try store.driver.createDirectory(dp("\(Self.v2)/team/Upper"))
        try store.driver.createDirectory(dp("\(Self.v2)/team/app/_uploads"))

        #expect(try store.registry.childComponents(of: nil) == ["library", "team"])
        #expect(try store.registry.childComponents(of: RepositoryName("team")) == ["app", "web"])
        #expect(try store.registry.childComponents(of: RepositoryName("team/app")) == ["web"])
        #expect(try store.registry.childComponents(of: RepositoryName("team/app/web")) == [])
        #expect(try store.registry.childComponents(of: RepositoryName("absent/prefix")) == [], "a missing prefix has none")
        #expect(try StoreFixture.make(kind).registry.childComponents(of: nil) == [], "an empty store")
    }

    @Test(arguments: StoreFixture.kinds) func aColdLookupReadsTheLinkOnceAndStatsTheDataOnce(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let bytes = seededBytes(count: 4321, seed: 47)
        let stored = try upload(bytes, to: try store.registry.repository("foo/bar"))
        let driver = ScriptedDriver(base: store.driver)
        let registry = Registry(driver: driver, cache: InMemoryCacheProvider())
        let blobs = try registry.repository("foo/bar").blobs

        let target = try blobs.linkTarget(stored.digest)
        let data = try blobs.resolve(stored.digest, linkedTo: target)
        #expect(data.descriptor == stored)
        #expect(data.modified > 0)
        #expect(driver.calls.withLock { $0 } == ScriptedDriver.Calls(getContent: 1, stat: 1), "one link read, one stat")

        // A link whose data is gone is unknown under the name asked for, as `resolve(_:)` says.
        try store.driver.delete(PathMapper.path(.blob(stored.digest)))
        #expect(throws: BlobError.unknown(stored.digest)) { try blobs.resolve(stored.digest, linkedTo: target) }
        #expect(throws: BlobError.unknown(stored.digest)) { try blobs.resolve(stored.digest) }
    }

    @Test func aRepositoryIsBuiltOnceSoItsCacheStatisticsAddUp() throws {
        let store = try StoreFixture.make("inmemory")
        defer { store.close() }
        let stored = try upload([1, 2, 3], to: try store.registry.repository("foo/bar"))
        let first = try #require(try store.registry.repository("foo/bar").blobs.accessController as? CachedBlobStatter)
        let second = try #require(try store.registry.repository(RepositoryName("foo/bar")).blobs.accessController as? CachedBlobStatter)
        #expect(first === second)
        let before = first.statistics.requests
        _ = try store.registry.repository("foo/bar").blobs.stat(stored.digest)
        _ = try store.registry.repository("foo/bar").blobs.stat(stored.digest)
        #expect(first.statistics.requests == before + 2)
        let other = try #require(try store.registry.repository("foo/other").blobs.accessController as? CachedBlobStatter)
        #expect(other !== first)
    }
}
