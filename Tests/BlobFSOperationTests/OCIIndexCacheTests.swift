@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// The OCI view's index.json is generated once per repository and tags' timeout, so that the
/// lookup that sizes it and the open that reads it share one generation; what a manifest is comes
/// from facts kept by digest, what the repository holds from storage at every generation.
@Suite struct OCIIndexCacheTests {
    func manifest(_ n: Int) -> [UInt8] {
        Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"annotations":{"n":"\#(n)"}}"#.utf8)
    }

    /// `app` with manifests 0..<count, the tag `v1` on manifest 0.
    func fixture(directoryTimeout: Double, count: Int = 3) throws -> (OperationFixture, [Digest]) {
        let fixture = OperationFixture(readWrite: false, directoryTimeout: directoryTimeout, ociView: true)
        try fixture.push(Array("{}".utf8), to: "app")
        let repository = try fixture.registry.repository("app")
        let digests = try (0..<count).map { try repository.manifests.put(manifest($0), as: Digester.digest(of: manifest($0))).digest }
        try repository.tags.tag(try Tag("v1"), to: digests[0])
        return (fixture, digests)
    }

    func index(_ fixture: OperationFixture) throws -> (size: Int, bytes: String) {
        let ino = try fixture.inode("oci/app/index.json")
        let size = Int(fixture.fs.stat(try fixture.fs.getattr(ino: ino)).st_size)
        return (size, String(decoding: try fixture.contents(of: ino, size: 1 << 20), as: UTF8.self))
    }

    @Test func theLookupAndTheOpenAfterItShareOneGeneration() throws {
        let (fixture, digests) = try fixture(directoryTimeout: 60)
        let ino = try fixture.inode("oci/app/index.json")
        let size = Int(fixture.fs.stat(try fixture.fs.getattr(ino: ino)).st_size)
        // A tag added between the lookup and the open changes neither the size nor the bytes.
        try fixture.registry.repository("app").tags.tag(try Tag("v2"), to: digests[1])
        let bytes = try fixture.contents(of: ino, size: 1 << 20)
        #expect(bytes.count == size)
        #expect(!String(decoding: bytes, as: UTF8.self).contains(#""v2""#))
    }

    @Test func withoutATimeoutEveryUseGeneratesAnewAndFollowsTagMoves() throws {
        let (fixture, digests) = try fixture(directoryTimeout: 0)
        let first = try index(fixture)
        #expect(first.size == first.bytes.utf8.count && first.bytes.contains(#""digest":"\#(digests[0])","size":\#(manifest(0).count),"annotations""#))
        try fixture.registry.repository("app").tags.tag(try Tag("v1"), to: digests[2])
        let moved = try index(fixture)
        #expect(moved.size == moved.bytes.utf8.count)
        #expect(moved.bytes.contains(#""digest":"\#(digests[2])","size":\#(manifest(2).count),"annotations":{"org.opencontainers.image.ref.name":"v1"}"#))
        // Manifest 0 is now an untagged root.
        #expect(moved.bytes.contains(#""digest":"\#(digests[0])","size":\#(manifest(0).count)}"#))
        #expect(fixture.fs.ociTree.indexes.count == 0, "nothing is kept without a timeout")
    }

    @Test func factsAreKeptByDigestButWhatTheRepositoryHoldsIsReadEachTime() throws {
        let (fixture, digests) = try fixture(directoryTimeout: 0)
        let before = try index(fixture)
        #expect(fixture.fs.ociTree.facts.count == 3)
        // The same index from the kept facts.
        #expect(try index(fixture).bytes == before.bytes)
        // A revision whose link goes is no longer listed, though its facts are kept.
        try fixture.driver.delete(PathMapper.path(.manifestRevisionLink(try RepositoryName("app"), digests[1])))
        let after = try index(fixture)
        #expect(before.bytes.contains(digests[1].description) && !after.bytes.contains(digests[1].description))
        #expect(fixture.fs.ociTree.facts.count == 3)
    }

    @Test func aTagWhoseManifestWentIsLeftOutThoughItsFactsAreKept() throws {
        let (fixture, digests) = try fixture(directoryTimeout: 0)
        #expect(try index(fixture).bytes.contains(#""org.opencontainers.image.ref.name":"v1""#))
        // The tagged manifest's revision link and data go: the tag dangles.
        try fixture.driver.delete(PathMapper.path(.manifestRevisionLink(try RepositoryName("app"), digests[0])))
        try fixture.driver.delete(PathMapper.path(.blobData(digests[0])))
        let after = try index(fixture).bytes
        #expect(!after.contains(#""v1""#) && !after.contains(digests[0].description), "\(after)")
        #expect(after.contains(digests[1].description) && after.contains(digests[2].description))
    }

    @Test func aRepositoryOfManyManifestsListsEachOnce() throws {
        // Enough revisions for the facts to be found on several threads.
        let (fixture, digests) = try fixture(directoryTimeout: 1, count: 600)
        let index = try index(fixture)
        let listed = index.bytes.split(separator: "\"digest\":\"").dropFirst().map { String($0.prefix(71)) }
        #expect(listed.count == digests.count && Set(listed) == Set(digests.map(\.description)))
        #expect(fixture.fs.ociTree.facts.count == 600)
    }

    @Test func keptIndexesAreBoundedAndAgeOut() {
        let lasting = GeneratedIndexes(lifetime: 3600)
        for n in 0..<(GeneratedIndexes.limit + 6) { lasting.keep([UInt8(n % 256)], for: try! RepositoryName("r\(n)")) }
        #expect(lasting.count == GeneratedIndexes.limit)
        #expect(lasting.recent(try! RepositoryName("r0")) == nil, "the oldest went first")
        #expect(lasting.recent(try! RepositoryName("r\(GeneratedIndexes.limit + 5)")) == [UInt8((GeneratedIndexes.limit + 5) % 256)])
        // A lifetime shorter than the time between two calls: what was kept is stale at once, and
        // dropped when the next is kept.
        let brief = GeneratedIndexes(lifetime: 1e-9)
        brief.keep([1], for: try! RepositoryName("a"))
        #expect(brief.recent(try! RepositoryName("a")) == nil)
        brief.keep([2], for: try! RepositoryName("b"))
        #expect(brief.count == 1)
    }
}
