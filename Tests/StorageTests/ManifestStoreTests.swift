import Distribution
import Glibc
@testable import Storage
import StorageDriver
import Testing
import TestSupport
#if canImport(StorageTesting)
import StorageTesting
#endif

/// A repository's manifests read and written on both drivers: what a push writes, what a listing
/// shows and leaves out, and what a damaged store gives.
@Suite struct ManifestStoreTests {
    static let v2 = "/docker/registry/v2"

    static func manifest(seed: Int) -> [UInt8] {
        Array(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":\
            "application/vnd.oci.image.config.v1+json","digest":"\(Digester.digest(of: [UInt8(seed)]))","size":1},"layers":[]}
            """.utf8)
    }

    @Test(arguments: StoreFixture.kinds) func aPutWritesWhatARegistryPushWrites(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("team/app")
        let bytes = Self.manifest(seed: 1)
        let digest = Digester.digest(of: bytes)
        let stored = try repository.manifests.put(bytes, as: digest)
        #expect(stored == Descriptor(digest: digest, size: Int64(bytes.count), mediaType: ManifestMediaType.ociManifest))
        // Data directly in blobs/ (no upload), the revision link, and _layers for the catalog; no _layers link.
        #expect(try store.allFiles() == [
            "\(Self.v2)/blobs/sha256/\(digest.hex.prefix(2))/\(digest.hex)/data",
            "\(Self.v2)/repositories/team/app/_manifests/revisions/sha256/\(digest.hex)/link",
        ])
        #expect(try store.driver.getContent(dp("\(Self.v2)/repositories/team/app/_manifests/revisions/sha256/\(digest.hex)/link"))
            == Array(digest.description.utf8))
        #expect(try store.registry.repositories().map(\.value) == ["team/app"])
        #expect(throws: BlobError.unknown(digest)) { try repository.blobs.stat(digest) }

        #expect(try repository.manifests.get(digest) == bytes)
        #expect(try repository.manifests.linkTarget(digest) == digest)
        let file = try repository.manifests.resolve(digest)
        #expect(file.digest == digest && file.size == Int64(bytes.count) && file.linkSet == .manifestRevisions)
        #expect(try repository.manifests.revisions() == [ManifestRevision(digest: digest, file: .success(file))])

        // Idempotent: the same files, the same content.
        let before = try store.allFiles()
        try repository.manifests.put(bytes, as: digest)
        #expect(try store.allFiles() == before)
    }

    @Test(arguments: StoreFixture.kinds) func aPutThatFailsACheckWritesNothing(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let manifests = try store.registry.repository("team/app").manifests
        let bytes = Self.manifest(seed: 2)
        let wrong = Digester.digest(of: Self.manifest(seed: 3))
        #expect(throws: BlobError.invalidDigest(wrong, reason: "content does not match digest")) { try manifests.put(bytes, as: wrong) }
        let sha512 = Digester.digest(of: bytes, algorithm: .sha512)
        #expect(throws: BlobError.self) { try manifests.put(bytes, as: sha512) }
        // 5 MiB: over the registry's manifest limit.
        let huge = Array(#"{"schemaVersion":2,"x":""#.utf8) + [UInt8](repeating: 0x61, count: 5 << 20) + Array(#""}"#.utf8)
        #expect {
            try manifests.put(huge, as: Digester.digest(of: huge))
        } throws: { error in
            guard case BlobError.io(_, _, EFBIG) = error else { return false }
            return true
        }
        #expect(try store.allPaths().isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func bytesTheRegistryCannotServeAreStoredAnyway(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let manifests = try store.registry.repository("team/app").manifests
        let garbage = Array("not a manifest at all".utf8)
        let stored = try manifests.put(garbage, as: Digester.digest(of: garbage))
        #expect(stored.mediaType == Descriptor.octetStream)
        #expect(try manifests.get(stored.digest) == garbage)
    }

    @Test(arguments: StoreFixture.kinds) func aManifestOverFourMiBOnDiskIsRefusedNotCutShort(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let manifests = try store.registry.repository("team/app").manifests
        let huge = [UInt8](repeating: 0x20, count: 5 << 20)
        let digest = Digester.digest(of: huge)
        try store.driver.putContent(PathMapper.path(.blobData(digest)), huge)
        try store.driver.putContent(LinkSet.manifestRevisions.path(manifests.repository, digest), Array(digest.description.utf8))
        #expect(try manifests.resolve(digest).size == Int64(huge.count), "listed with its true size")
        #expect {
            try manifests.get(digest)
        } throws: { error in
            guard case BlobError.io(_, _, EFBIG) = error else { return false }
            return true
        }
    }

    @Test(arguments: StoreFixture.kinds) func aListingLeavesOutWhatReadsAsAbsentAndReportsWhatIsCorrupt(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("team/app")
        var digests: [Digest] = []
        for seed in 10..<16 {
            let bytes = Self.manifest(seed: seed)
            digests.append(try repository.manifests.put(bytes, as: Digester.digest(of: bytes)).digest)
        }
        let (good, empty, newline, garbage, other, gone) = (digests[0], digests[1], digests[2], digests[3], digests[4], digests[5])
        func link(_ d: Digest) -> DriverPath { LinkSet.manifestRevisions.path(repository.name, d) }
        try store.driver.putContent(link(empty), [])
        try store.driver.putContent(link(newline), Array((newline.description + "\n").utf8))
        try store.driver.putContent(link(garbage), [0xff, 0x00, 0x41])
        try store.driver.putContent(link(other), Array(good.description.utf8))  // another manifest than its name
        try store.driver.delete(PathMapper.path(.blob(gone)))  // a 2.8.2 GC
        // Not a digest, not an algorithm: skipped, as the registry's enumeration skips them.
        try store.driver.putContent(dp("\(Self.v2)/repositories/team/app/_manifests/revisions/sha256/nothex/link"), Array(good.description.utf8))
        try store.driver.putContent(dp("\(Self.v2)/repositories/team/app/_manifests/revisions/tarsum/x/link"), [])
        // A revision directory without a link (2.8.2's DELETE leaves it).
        try store.driver.createDirectory(dp("\(Self.v2)/repositories/team/app/_manifests/revisions/sha256/\(String(repeating: "0", count: 64))"))

        let listed = try repository.manifests.revisions()
        #expect(listed.map(\.digest) == [good, newline, garbage, other].sorted())
        for revision in listed {
            switch revision.file {
            case .success(let file): #expect(revision.digest == good && file.digest == good)
            case .failure(let error):
                guard case .corruptLink(let path, _) = error else {
                    Issue.record("\(revision.digest): expected corruptLink, got \(error)")
                    continue
                }
                #expect(path == link(revision.digest).value)
            }
        }
        #expect(throws: BlobError.unknown(empty)) { try repository.manifests.resolve(empty) }
        #expect(throws: BlobError.unknown(gone)) { try repository.manifests.resolve(gone) }
        #expect(throws: BlobError.unknown(gone)) { try repository.manifests.get(gone) }
        for corrupt in [newline, garbage, other] {
            #expect(throws: BlobError.self) { try repository.manifests.linkTarget(corrupt) }
            #expect(throws: BlobError.self) { try repository.manifests.get(corrupt) }
        }
        // A repository with no manifests at all.
        #expect(try store.registry.repository("nothing/here").manifests.revisions().isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func aDataFileThatIsADirectoryIsReportedNotLeftOut(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("team/app")
        let bytes = Self.manifest(seed: 20)
        let digest = try repository.manifests.put(bytes, as: Digester.digest(of: bytes)).digest
        try store.driver.delete(PathMapper.path(.blobData(digest)))
        try store.driver.createDirectory(PathMapper.path(.blobData(digest)))
        let listed = try repository.manifests.revisions()
        #expect(listed.count == 1)
        #expect(throws: BlobError.notRegularFile(digest, path: PathMapper.path(.blobData(digest)).value)) { try listed[0].file.get() }
    }

    /// images-spec §1.1 "Reads try both": a manifest 2.1.0 linked under `_layers` resolves (the
    /// registry serves it), but is not a listed revision.
    @Test(arguments: StoreFixture.kinds) func aManifestLinkedOnlyInLayersResolvesButIsNotListed(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("old/layout")
        let bytes = Self.manifest(seed: 30)
        let descriptor = try repository.blobs.put(mediaType: ManifestMediaType.ociManifest, bytes)
        #expect(try repository.manifests.revisions().isEmpty)
        #expect(try repository.manifests.resolve(descriptor.digest).linkSet == .layers)
        #expect(try repository.manifests.get(descriptor.digest) == bytes)
        // A revision link wins over the _layers link.
        try repository.manifests.put(bytes, as: descriptor.digest)
        #expect(try repository.manifests.resolve(descriptor.digest).linkSet == .manifestRevisions)
    }

    @Test func aSymlinkedManifestsDirectoryIsNeverFollowed() throws {
        let store = try StoreFixture.make("filesystem")
        defer { store.close() }
        let elsewhere = try StoreFixture.make("filesystem")
        defer { elsewhere.close() }
        let outside = try elsewhere.registry.repository("team/app")
        let bytes = Self.manifest(seed: 40)
        let digest = try outside.manifests.put(bytes, as: Digester.digest(of: bytes)).digest
        try outside.tags.tag(Tag("latest"), to: digest)
        // Data in this store too, so that only the link tree comes from outside.
        _ = try store.registry.blobStore.put(mediaType: Descriptor.octetStream, bytes)
        try store.registry.createRepository(RepositoryName("team/app"))
        let root = store.directory!.path + Self.v2
        #expect(symlink(elsewhere.directory!.path + Self.v2 + "/repositories/team/app/_manifests", root + "/repositories/team/app/_manifests") == 0)

        let repository = try store.registry.repository("team/app")
        #expect(throws: BlobError.self) { try repository.manifests.revisions() }
        #expect(throws: BlobError.self) { try repository.manifests.resolve(digest) }
        #expect(throws: BlobError.self) { try repository.manifests.get(digest) }
        #expect(throws: BlobError.self) { try repository.tags.currentLinks() }
        #expect(throws: BlobError.self) { try repository.tags.current(Tag("latest")) }
    }
}
