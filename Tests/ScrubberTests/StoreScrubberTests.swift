import Distribution
import Scrubber
import Storage
import StorageDriver
import TestSupport
import Testing
import StorageTesting

/// `blobfs verify`'s checks: each kind of damage is found, named, and reported once.
@Suite struct StoreScrubberTests {
    /// Two repositories sharing one blob, an alias link, a zero-length blob and a 1 MiB blob.
    struct Seeded {
        let store: StoreFixture
        let small: Descriptor
        let large: Descriptor
        let empty: Descriptor
        let aliased: Descriptor
        let alias: Digest
    }

    func seeded(_ kind: String) throws -> Seeded {
        let store = try StoreFixture.make(kind)
        let app = try store.registry.repository("team/app")
        let web = try store.registry.repository("team/app/web")
        let small = try upload(seededBytes(count: 1000, seed: 1), to: app)
        let large = try upload(seededBytes(count: 1 << 20, seed: 2), to: app)
        let empty = try upload([], to: web)
        let aliasedBytes = seededBytes(count: 5000, seed: 3)
        let alias = Digester.digest(of: aliasedBytes, algorithm: .sha512)
        let aliased = try upload(aliasedBytes, to: web, as: alias)
        _ = try web.blobs.mount(small.digest, from: app.blobs)
        return Seeded(store: store, small: small, large: large, empty: empty, aliased: aliased, alias: alias)
    }

    func verify(_ store: StoreFixture, repository: String? = nil) throws -> ScrubReport {
        try StoreScrubber(registry: store.registry).scrub(repository: repository.map { try RepositoryName($0) })
    }

    func link(_ repository: String, _ digest: Digest) -> DriverPath {
        PathMapper.path(.layerLink(try! RepositoryName(repository), digest))
    }

    @Test(arguments: StoreFixture.kinds) func intactStoreHasNoProblems(kind: String) throws {
        let s = try seeded(kind)
        defer { s.store.close() }
        let report = try verify(s.store)
        #expect(report.problems == [])
        #expect(report.isIntact)
        #expect(report.blobsChecked == 4)
        #expect(report.bytesHashed == 1000 + (1 << 20) + 0 + 5000 + 5000, "the alias is hashed once more with sha512")
        #expect(report.repositoriesChecked == 2)
        #expect(report.linksChecked == 6, "app: 2; web: empty, aliased (sha256 and sha512), small")
    }

    @Test func emptyStoreIsIntact() throws {
        let store = try StoreFixture.make("filesystem")
        defer { store.close() }
        try store.driver.putContent(dp("/docker/registry/v2/repositories/.keep"), [])
        let report = try verify(store)
        #expect(report.isIntact && report.blobsChecked == 0 && report.repositoriesChecked == 0)
    }

    @Test(arguments: StoreFixture.kinds) func flippedByteIsCorruptData(kind: String) throws {
        let s = try seeded(kind)
        defer { s.store.close() }
        let dataPath = PathMapper.path(.blobData(s.large.digest))
        var bytes = try s.store.driver.getContent(dataPath, limit: Int.max)
        bytes[12345] ^= 0x01
        try s.store.driver.putContent(dataPath, bytes)

        var streamed: [StoreProblem] = []
        let report = try StoreScrubber(registry: s.store.registry).scrub(onProblem: { streamed.append($0) })
        #expect(report.problems.count == 1, "reported once, not once more for its link")
        let problem = try #require(report.problems.first)
        #expect(problem.kind == .corruptData)
        #expect(problem.path == dataPath)
        #expect(problem.digest == s.large.digest)
        #expect(problem.detail.contains(Digester.digest(of: bytes).description))
        #expect(problem.line(root: "/srv").hasPrefix("corrupt data: /srv\(dataPath.value): "))
        #expect(streamed == report.problems)
    }

    @Test(arguments: StoreFixture.kinds) func deletedDataFileIsMissingData(kind: String) throws {
        let s = try seeded(kind)
        defer { s.store.close() }
        try s.store.driver.delete(PathMapper.path(.blobData(s.small.digest)))
        if kind == "inmemory" {
            // The in-memory driver has no empty directories: keep the blob directory as a disk would.
            try s.store.driver.putContent(try PathMapper.path(.blob(s.small.digest)).appending("leftover"), [])
        }
        let report = try verify(s.store)
        // Linked in both repositories: one line per link, each naming its repository.
        #expect(report.problems.map(\.kind) == [.missingData, .missingData])
        #expect(Set(report.problems.map(\.path)) == [link("team/app", s.small.digest), link("team/app/web", s.small.digest)])
        #expect(report.problems.allSatisfy { $0.dataPath == PathMapper.path(.blobData(s.small.digest)) })
        #expect(
            report.problems.first?.line(root: "/srv").hasSuffix(": /srv\(PathMapper.path(.blobData(s.small.digest)))") == true)
    }

    @Test(arguments: StoreFixture.kinds) func deletedBlobDirectoryIsALinkToADeletedBlob(kind: String) throws {
        let s = try seeded(kind)
        defer { s.store.close() }
        try s.store.driver.delete(PathMapper.path(.blob(s.large.digest)))  // what a 2.8 GC does
        let report = try verify(s.store)
        #expect(report.problems.map(\.kind) == [.linkToDeletedBlob])
        #expect(report.problems.first?.path == link("team/app", s.large.digest))
        #expect(report.problems.first?.detail.contains("garbage collection") == true)
    }

    @Test(arguments: [
        ("hello", StoreProblem.Kind.garbageLink),
        ("sha256:\(String(repeating: "a", count: 64))\n", .garbageLink),  // a newline the registry would refuse
        ("sha512:\(String(repeating: "a", count: 128))", .garbageLink),  // links hold canonical digests
        ("", .emptyLink),
    ]) func badLinkContent(content: String, expected: StoreProblem.Kind) throws {
        let s = try seeded("filesystem")
        defer { s.store.close() }
        let path = link("team/app", s.small.digest)
        try s.store.driver.putContent(path, Array(content.utf8))
        let report = try verify(s.store)
        #expect(report.problems.map(\.kind) == [expected])
        #expect(report.problems.first?.path == path)
        #expect(report.problems.first?.repository == (try RepositoryName("team/app")))
    }

    @Test func garbageLinkShowsTheContent() throws {
        let s = try seeded("inmemory")
        defer { s.store.close() }
        try s.store.driver.putContent(link("team/app", s.small.digest), Array("not a digest\u{1}".utf8))
        let problem = try #require(try verify(s.store).problems.first)
        #expect(problem.kind == .garbageLink)
        #expect(problem.detail.contains(#""not a digest\x01""#))
    }

    @Test func linkHoldingAnotherBlobIsAWrongLink() throws {
        let s = try seeded("inmemory")
        defer { s.store.close() }
        try s.store.driver.putContent(link("team/app", s.small.digest), Array(s.large.digest.description.utf8))
        let report = try verify(s.store)
        #expect(report.problems.map(\.kind) == [.wrongLink])
    }

    @Test func aliasOfTheWrongBlobIsAWrongLink() throws {
        let s = try seeded("inmemory")
        defer { s.store.close() }
        try s.store.driver.putContent(link("team/app/web", s.alias), Array(s.small.digest.description.utf8))
        let report = try verify(s.store)
        #expect(report.problems.map(\.kind) == [.wrongLink])
        #expect(report.problems.first?.path == link("team/app/web", s.alias))
    }

    @Test func linkThatIsADirectoryIsAGarbageLink() throws {
        let s = try seeded("filesystem")
        defer { s.store.close() }
        let path = link("team/app", s.small.digest)
        try s.store.driver.delete(path)
        try s.store.driver.putContent(try path.appending("inside"), [1])
        #expect(try verify(s.store).problems.map(\.kind) == [.garbageLink])
    }

    @Test(arguments: StoreFixture.kinds) func repositoryFilter(kind: String) throws {
        let s = try seeded(kind)
        defer { s.store.close() }
        // Damage in team/app only: its large blob's data, and a garbage link.
        let dataPath = PathMapper.path(.blobData(s.large.digest))
        var bytes = try s.store.driver.getContent(dataPath, limit: Int.max)
        bytes[0] ^= 0x80
        try s.store.driver.putContent(dataPath, bytes)
        try s.store.driver.putContent(link("team/app", s.small.digest), Array("garbage".utf8))

        let web = try verify(s.store, repository: "team/app/web")
        #expect(web.isIntact, "team/app/web links neither the corrupt blob nor the garbage link")
        #expect(web.repositoriesChecked == 1)
        #expect(web.blobsChecked == 3, "only the blobs team/app/web links: empty, aliased, small")
        #expect(web.linksChecked == 4)

        let app = try verify(s.store, repository: "team/app")
        #expect(app.problems.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.corruptData, .garbageLink])
        #expect(app.blobsChecked == 1, "the garbage link names no blob to hash")

        #expect(throws: ScrubError.repositoryNotFound(try RepositoryName("team"))) {
            try verify(s.store, repository: "team")
        }
    }
}
