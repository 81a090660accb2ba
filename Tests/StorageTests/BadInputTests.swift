import BlobCache
import Distribution
import Storage
import StorageDriver
import Testing
import TestSupport
import StorageTesting

/// Hostile names and digests are refused before anything touches the disk; wrong content leaves
/// nothing behind; corrupt stores give errors, not crashes.
@Suite struct BadInputTests {
    @Test(arguments: ["..", "_layers", "Upper/case", String(repeating: "a", count: 256), "a//b", "localhost:5000/x", "", "../../etc"])
    func hostileRepositoryNamesAreRefusedWithoutTouchingTheDisk(name: String) throws {
        let store = try StoreFixture.make("filesystem")
        defer { store.close() }
        #expect(throws: BlobError.self) { try store.registry.repository(name) }
        #expect(try store.allPaths().isEmpty)
        #expect(try FileManagerList(store.directory!.path).isEmpty)
    }

    @Test(arguments: ["sha256:abc", "sha256:" + String(repeating: "A", count: 64), "md5:d41d8cd98f00b204e9800998ecf8427e", ""])
    func hostileDigestsAreRefused(text: String) {
        #expect(throws: DigestError.self) { try Digest(parsing: text) }
    }

    @Test(arguments: StoreFixture.kinds) func wrongDigestAtCommitLeavesNothing(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 2048, seed: 7)
        let wrong = Digester.digest(of: Array(bytes.dropLast()))
        for algorithm in [DigestAlgorithm.sha256, .sha512] {
            let claimed = algorithm == .sha256 ? wrong : Digester.digest(of: [1], algorithm: .sha512)
            let writer = try repository.blobs.create()
            try writer.write(bytes)
            #expect(throws: BlobError.invalidDigest(claimed, reason: "content does not match digest")) {
                try writer.commit(provisional: Descriptor(digest: claimed, size: Int64(bytes.count)))
            }
            try writer.cancel()  // a no-op now
            #expect(try store.allFiles().isEmpty, "no blob, no link, no upload")
            #expect(throws: BlobError.unknown(claimed)) { try repository.blobs.stat(claimed) }
        }
    }

    @Test(arguments: StoreFixture.kinds) func wrongSizeAtCommitLeavesNothing(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let writer = try store.registry.repository("foo/bar").blobs.create()
        try writer.write([1, 2, 3])
        #expect(throws: BlobError.invalidLength(expected: 4, actual: 3)) {
            try writer.commit(provisional: Descriptor(digest: Digester.digest(of: [1, 2, 3]), size: 4))
        }
        #expect(try store.allFiles().isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func garbageLinkIsAnErrorNotACrash(kind: String) throws {
        let store = try StoreFixture.make(kind, cache: nil)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let d = try upload([1, 2, 3], to: repository).digest
        let link = LinkSet.layers.path(repository.name, d)
        // Also links a byte or a case away from their own name, which is taken without a parse.
        for garbage: [UInt8] in [
            Array("sha256:nothex\n".utf8), Array((d.description + "\n").utf8), [0xff, 0xfe, 0x00], Array("md5:abc".utf8),
            Array(d.description.uppercased().utf8), Array("sha256;\(d.hex)".utf8), Array("sha512:\(d.hex)".utf8),
        ] {
            try store.driver.putContent(link, garbage)
            #expect(throws: BlobError.self) { try repository.blobs.stat(d) }
            do {
                _ = try repository.blobs.stat(d)
            } catch {
                guard case .corruptLink(let path, _) = error else {
                    Issue.record("expected corruptLink, got \(error)")
                    continue
                }
                #expect(path == link.value)
            }
        }
        // An empty link (a crash leftover, or the registry mid-write) reads as absent.
        try store.driver.putContent(link, [])
        #expect(throws: BlobError.unknown(d)) { try repository.blobs.stat(d) }
        // A huge "link" is refused without reading it all.
        try store.driver.putContent(link, [UInt8](repeating: 0x61, count: 100_000))
        #expect(throws: BlobError.self) { try repository.blobs.stat(d) }
    }

    @Test(arguments: StoreFixture.kinds) func linkContentIsAuthoritativeNotTheDirectoryName(kind: String) throws {
        let store = try StoreFixture.make(kind, cache: nil)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let a = try upload([1], to: repository)
        let b = try upload([2, 2], to: repository)
        try store.driver.putContent(LinkSet.layers.path(repository.name, a.digest), Array(b.digest.description.utf8))
        #expect(try repository.blobs.stat(a.digest) == b)
        #expect(try repository.blobs.get(a.digest) == [2, 2])
    }

    @Test(arguments: StoreFixture.kinds) func vanishedOrShrunkDataIsAnErrorNeverAShortRead(kind: String) throws {
        let store = try StoreFixture.make(kind, cache: InMemoryCacheProvider())
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 10_000, seed: 8)
        let d = try upload(bytes, to: repository)
        let dataPath = PathMapper.path(.blobData(d.digest))

        // Shrunk under an open reader: the read that runs out fails.
        let reader = try repository.blobs.open(d.digest)
        try store.driver.putContent(dataPath, Array(bytes[..<5000]))
        let reopened = try repository.blobs.open(d.digest)  // the warm cache still says 10,000 bytes
        var buffer = [UInt8](repeating: 0, count: 8192)
        #expect(throws: BlobError.truncated(d.digest, path: dataPath.value, expected: 10_000, actual: 5000)) {
            try buffer.withUnsafeMutableBytes { _ = try reopened.read(into: $0, at: 4096) }
        }
        _ = reader

        // Gone under a warm cache: opening fails clearly.
        try store.driver.delete(PathMapper.path(.blob(d.digest)))
        #expect(throws: BlobError.dataMissing(d.digest, path: dataPath.value)) { try repository.blobs.open(d.digest) }
        // With no cache, a link whose data is gone reads as absent, as the registry answers.
        let uncached = try Registry(driver: store.driver, cache: nil).repository("foo/bar")
        #expect(throws: BlobError.unknown(d.digest)) { try uncached.blobs.stat(d.digest) }
    }

    @Test func resumeOfACorruptUploadIsAnError() throws {
        let store = try StoreFixture.make("inmemory")
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let writer = try repository.blobs.create()
        try writer.close()
        try store.driver.putContent(PathMapper.path(.uploadStartedAt(repository.name, UploadID(writer.id))), Array("yesterday".utf8))
        #expect(throws: BlobError.corruptUpload(id: writer.id, reason: "startedat is not an RFC 3339 time")) {
            try repository.blobs.resume(id: writer.id)
        }
        #expect(throws: BlobError.uploadUnknown("not-a-uuid")) { try repository.blobs.resume(id: "not-a-uuid") }
        #expect(throws: BlobError.uploadUnknown(writer.id)) { try store.registry.repository("other/repo").blobs.resume(id: writer.id) }
    }
}

import Foundation

func FileManagerList(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path)
}
