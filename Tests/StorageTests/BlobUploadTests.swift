import BlobCache
import Distribution
import Storage
import StorageDriver
import Testing
import TestSupport
import StorageTesting

/// Ports of the registry's `registry/storage/blob_test.go` on both drivers.
@Suite struct BlobUploadTests {
    @Test(arguments: StoreFixture.kinds) func simpleBlobUpload(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 300_000, seed: 1)
        let digest = Digester.digest(of: bytes)

        // Create then cancel: the upload is gone, and resuming it is unknown.
        let cancelled = try repository.blobs.create()
        try cancelled.cancel()
        try cancelled.cancel()  // idempotent
        #expect(throws: BlobError.uploadUnknown(cancelled.id)) { try repository.blobs.resume(id: cancelled.id) }
        #expect(try store.allFiles().isEmpty)

        // Create, write, close, resume: size survives; the upload lives in _uploads/<id>.
        let writer = try repository.blobs.create()
        try writer.write(Array(bytes[..<100_000]))
        #expect(writer.size == 100_000)
        try writer.close()
        let uploadDir = "/docker/registry/v2/repositories/foo/bar/_uploads/\(writer.id)"
        #expect(try store.allFiles().sorted() == ["\(uploadDir)/data", "\(uploadDir)/startedat"])
        #expect(try store.driver.getContent(dp("\(uploadDir)/startedat")) == Array(writer.startedAt.rfc3339.utf8))
        let resumed = try repository.blobs.resume(id: writer.id)
        #expect(resumed.size == 100_000)
        #expect(resumed.startedAt == writer.startedAt)
        try resumed.write(Array(bytes[100_000...]))
        #expect(resumed.size == Int64(bytes.count))

        let committed = try resumed.commit(provisional: Descriptor(digest: digest, size: Int64(bytes.count)))
        #expect(committed == Descriptor(digest: digest, size: Int64(bytes.count)))
        #expect(throws: BlobError.uploadUnknown(writer.id)) { try repository.blobs.resume(id: writer.id) }
        #expect(throws: StorageDriverError.pathNotFound(uploadDir)) { try store.driver.stat(dp(uploadDir)) }
        try resumed.cancel()  // a no-op after commit
        try resumed.close()

        #expect(try repository.blobs.stat(digest) == committed)
        expectSameBytes(try repository.blobs.get(digest), bytes)
        #expect(try store.allFiles().sorted() == [
            "/docker/registry/v2/blobs/sha256/\(digest.hex.prefix(2))/\(digest.hex)/data",
            "/docker/registry/v2/repositories/foo/bar/_layers/sha256/\(digest.hex)/link",
        ])
        #expect(try store.driver.getContent(dp("/docker/registry/v2/repositories/foo/bar/_layers/sha256/\(digest.hex)/link"))
            == Array(digest.description.utf8))

        // Delete: only this repository's link goes; stat and open are unknown afterwards.
        try repository.blobs.delete(digest)
        #expect(throws: BlobError.unknown(digest)) { try repository.blobs.stat(digest) }
        #expect(throws: BlobError.unknown(digest)) { try repository.blobs.open(digest) }
        #expect(throws: BlobError.unknown(digest)) { try repository.blobs.delete(digest) }
        expectSameBytes(try store.registry.blobStore.get(digest), bytes)  // the data stays for GC

        // Uploading again relinks it.
        try upload(bytes, to: repository)
        #expect(try repository.blobs.stat(digest).size == Int64(bytes.count))
    }

    @Test func deleteWithDeletesDisabledIsRefused() throws {
        let store = try StoreFixture.make("inmemory", deleteEnabled: false)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let d = try upload([1, 2, 3], to: repository).digest
        #expect(throws: BlobError.unsupported("delete (deletes are disabled)")) { try repository.blobs.delete(d) }
        #expect(try repository.blobs.stat(d).size == 3)
    }

    @Test(arguments: StoreFixture.kinds) func simpleBlobReadWithSeek(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 1 << 20, seed: 2)
        let d = Digester.digest(of: bytes)
        #expect(throws: BlobError.unknown(d)) { try repository.blobs.stat(d) }
        #expect(throws: BlobError.unknown(d)) { try repository.blobs.open(d) }

        let descriptor = try upload(bytes, to: repository)
        #expect(descriptor.size == Int64(bytes.count))
        var stream = BlobStream(try repository.blobs.open(d))
        let first = try stream.readToEnd()
        #expect(Digester.digest(of: first) == d)
        #expect(try stream.seek(0, from: .start) == 0)
        expectSameBytes(try stream.readToEnd(), bytes)
    }

    @Test(arguments: StoreFixture.kinds) func zeroLengthBlob(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let committed = try upload([], to: repository)
        #expect(committed.digest == Digest.emptySHA256)
        #expect(committed.size == 0)
        #expect(try repository.blobs.get(Digest.emptySHA256) == [])
        #expect(try store.driver.stat(PathMapper.path(.blobData(Digest.emptySHA256))).size == 0)
    }

    @Test(arguments: StoreFixture.kinds) func writeThenSize(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let writer = try store.registry.repository("foo/bar").blobs.create()
        try writer.write([1, 2, 3])
        try writer.close()
        #expect(writer.size == 3)
        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.write([4]) }
    }

    @Test(arguments: StoreFixture.kinds) func sha512ProvisionalDigestIsStoredOnceUnderSHA256(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 12345, seed: 3)
        let sha256 = Digester.digest(of: bytes)
        let sha512 = Digester.digest(of: bytes, algorithm: .sha512)
        let committed = try upload(bytes, to: repository, as: sha512)
        #expect(committed.digest == sha256)
        let layers = "/docker/registry/v2/repositories/foo/bar/_layers"
        #expect(try store.allFiles().sorted() == [
            "/docker/registry/v2/blobs/sha256/\(sha256.hex.prefix(2))/\(sha256.hex)/data",
            "\(layers)/sha256/\(sha256.hex)/link",
            "\(layers)/sha512/\(sha512.hex)/link",
        ])
        for link in ["\(layers)/sha256/\(sha256.hex)/link", "\(layers)/sha512/\(sha512.hex)/link"] {
            #expect(try store.driver.getContent(dp(link)) == Array(sha256.description.utf8))  // canonical, no newline
        }
        #expect(try repository.blobs.stat(sha512) == Descriptor(digest: sha256, size: Int64(bytes.count)))
        expectSameBytes(try repository.blobs.get(sha512), bytes)
    }

    @Test func sha384ProvisionalDigestHashedWhileWriting() throws {
        let store = try StoreFixture.make("inmemory")
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 5000, seed: 4)
        let writer = try repository.blobs.createUpload(alsoDigest: .sha384)
        try writer.write(bytes)
        let committed = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: bytes, algorithm: .sha384), size: 0))
        #expect(committed.digest == Digester.digest(of: bytes))
    }

    @Test(arguments: StoreFixture.kinds) func twoUploadsOfTheSameContentLeaveOneBlob(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let a = try store.registry.repository("team/a")
        let b = try store.registry.repository("team/b")
        let bytes = seededBytes(count: 4096, seed: 5)
        let w1 = try a.blobs.create()
        let w2 = try b.blobs.create()
        try w1.write(bytes)
        try w2.write(bytes)
        let d = Descriptor(digest: Digester.digest(of: bytes), size: 4096)
        #expect(try w1.commit(provisional: d) == d)
        #expect(try w2.commit(provisional: d) == d)
        #expect(try store.allFiles().filter { $0.hasSuffix("/data") }.count == 1)
        expectSameBytes(try a.blobs.get(d.digest), bytes)
        expectSameBytes(try b.blobs.get(d.digest), bytes)
    }

    @Test(arguments: StoreFixture.kinds) func mountLinksWithoutCopying(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let source = try store.registry.repository("library/source")
        let destination = try store.registry.repository("team/destination")
        let bytes = seededBytes(count: 777, seed: 6)
        let d = try upload(bytes, to: source)
        #expect(throws: BlobError.unknown(d.digest)) { try destination.blobs.stat(d.digest) }
        #expect(try destination.blobs.mount(d.digest, from: source.blobs) == d)
        expectSameBytes(try destination.blobs.get(d.digest), bytes)
        try source.blobs.delete(d.digest)
        expectSameBytes(try destination.blobs.get(d.digest), bytes)
        #expect(throws: BlobError.unknown(d.digest)) { try source.blobs.stat(d.digest) }
    }

    @Test(arguments: StoreFixture.kinds) func enumerateYieldsEveryLinkedDigest(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        var expected = Set<Digest>()
        for seed in UInt64(0)..<5 { expected.insert(try upload(seededBytes(count: 100 + Int(seed), seed: seed), to: repository).digest) }
        let aliasBytes = seededBytes(count: 50, seed: 99)
        let alias = Digester.digest(of: aliasBytes, algorithm: .sha512)
        try upload(aliasBytes, to: repository, as: alias)
        expected.formUnion([alias, Digester.digest(of: aliasBytes)])
        // A deleted blob leaves an empty directory behind, as the registry does: not enumerated.
        let deleted = try upload([9, 9, 9], to: repository).digest
        try repository.blobs.delete(deleted)
        var seen: [Digest] = []
        try repository.blobs.enumerate { seen.append($0) }
        #expect(Set(seen) == expected)
        #expect(seen.count == expected.count)
        var none: [Digest] = []
        try store.registry.repository("empty/repo").blobs.enumerate { none.append($0) }
        #expect(none.isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func putStoresSmallBlobsAndChecksTheDriverNotTheCache(kind: String) throws {
        let cache = InMemoryCacheProvider()
        let store = try StoreFixture.make(kind, cache: cache)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = Array(#"{"schemaVersion":2}"#.utf8)
        let d = try repository.blobs.put(mediaType: "application/vnd.oci.image.manifest.v1+json", bytes)
        expectSameBytes(try repository.blobs.get(d.digest), bytes)
        // GC removes the data behind a warm cache; put must write it again (upstream #4868).
        _ = try store.registry.globalStatter.stat(d.digest)
        try store.driver.delete(PathMapper.path(.blob(d.digest)))
        _ = try repository.blobs.put(mediaType: d.mediaType, bytes)
        expectSameBytes(try store.registry.blobStore.get(d.digest), bytes)
    }

    @Test(arguments: StoreFixture.kinds) func repositoriesAreDirectoriesWithLayers(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        for name in ["team/app", "team/app/web", "library/ubuntu", "blobs/blobs"] {
            try upload([1], to: try store.registry.repository(name))
        }
        // A repository with only _manifests is invisible, as in the registry's catalog.
        try store.driver.putContent(dp("/docker/registry/v2/repositories/only/manifests/_manifests/revisions/x"), [])
        #expect(try store.registry.repositories().map(\.value) == ["blobs/blobs", "library/ubuntu", "team/app", "team/app/web"])
        #expect(try StoreFixture.make(kind).registry.repositories().isEmpty)
    }
}

@Suite struct RepositoryCreationTests {
    @Test(arguments: StoreFixture.kinds) func createdRepositoriesAreEnumeratedAndPrefixesAreNot(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        try store.registry.createNamePrefix(RepositoryName("team"))
        try store.registry.createRepository(RepositoryName("team/app"))
        try store.registry.createRepository(RepositoryName("team/app"))
        #expect(try store.registry.repositories().map(\.value) == ["team/app"])
        #expect(try store.driver.stat(PathMapper.path(.layers(RepositoryName("team/app")))).isDirectory)
    }
}
