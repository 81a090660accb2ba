import Distribution
import Foundation
import Storage
import StorageDriver
import Testing
import TestSupport

/// Blobs committed through `LinkedBlobStore` into an empty root are then served by Debian's
/// docker-registry over HTTP: 200, the same bytes, the same `Docker-Content-Digest`.
@Suite(.serialized) struct BlobfsWritesRegistryServesTests {
    @Test func blobsCommittedByBlobfsAreServedByTheRegistry() throws {
        let root = try TemporaryDirectory(prefix: "blobfs-interop")
        defer { root.remove() }
        let registry = Registry(driver: try FilesystemDriver(root: root.path))
        var expected: [(repository: String, asked: Digest, bytes: [UInt8])] = []

        let web = try registry.repository("team/app/web")
        let big = seededBytes(count: 5 << 20, seed: 50)
        let writer = try web.blobs.create()
        for start in stride(from: 0, to: big.count, by: 300_001) {  // odd-sized appends
            try writer.write(Array(big[start..<min(start + 300_001, big.count)]))
        }
        let bigDescriptor = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: big), size: Int64(big.count)))
        expected.append(("team/app/web", bigDescriptor.digest, big))

        let aliased = seededBytes(count: 9999, seed: 51)
        let sha512 = Digester.digest(of: aliased, algorithm: .sha512)
        let aliasWriter = try web.blobs.create()
        try aliasWriter.write(aliased)
        _ = try aliasWriter.commit(provisional: Descriptor(digest: sha512, size: Int64(aliased.count)))
        expected.append(("team/app/web", sha512, aliased))
        expected.append(("team/app/web", Digester.digest(of: aliased), aliased))

        let library = try registry.repository("library/ubuntu")
        let small = Array("hello, registry".utf8)
        let smallDescriptor = try library.blobs.put(mediaType: Descriptor.octetStream, small)
        expected.append(("library/ubuntu", smallDescriptor.digest, small))
        let writerEmpty = try library.blobs.create()
        _ = try writerEmpty.commit(provisional: Descriptor(digest: Digest.emptySHA256, size: 0))
        expected.append(("library/ubuntu", Digest.emptySHA256, []))
        _ = try library.blobs.mount(bigDescriptor.digest, from: web.blobs)
        expected.append(("library/ubuntu", bigDescriptor.digest, big))

        // Nothing of ours is left in _uploads.
        let leftovers = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String }.filter { $0.contains("_uploads/") }
        #expect(leftovers == [])

        try RegistryServer.withServer(root: root.path) { server in
            for blob in expected {
                let canonical = Digester.digest(of: blob.bytes)
                let head = try server.client.head(repository: blob.repository, digest: "\(blob.asked)")
                #expect(head.status == 200, "HEAD \(blob.repository) \(blob.asked): \(head.status)\n\(server.log.suffix(3000))")
                #expect(head.header("docker-content-digest") == "\(canonical)")
                #expect(head.header("content-length") == "\(blob.bytes.count)")
                let get = try server.client.get(repository: blob.repository, digest: "\(blob.asked)")
                #expect(get.status == 200)
                #expect(get.header("docker-content-digest") == "\(canonical)")
                expectSameBytes(get.body, blob.bytes, "GET \(blob.repository) \(blob.asked)")
            }
            // Linked only in another repository: the registry agrees it is not here.
            let elsewhere = try server.client.head(repository: "library/ubuntu", digest: "\(sha512)")
            #expect(elsewhere.status == 404)
        }
    }
}
