import Distribution
import Storage
import StorageDriver
import Testing
import TestSupport

/// Blobs pushed to Debian's real docker-registry over its HTTP API are read back through
/// `LinkedBlobStore` with identical bytes and descriptors.
@Suite(.serialized) struct RegistryWritesBlobfsReadsTests {
    struct Pushed {
        let repository: String
        let bytes: [UInt8]
        let digest: Digest  // as pushed (possibly sha512)
        var canonical: Digest { Digester.digest(of: bytes) }
    }

    @Test func blobsPushedOverHTTPReadBackByteForByte() throws {
        let root = try TemporaryDirectory(prefix: "blobfs-interop")
        defer { root.remove() }
        var pushed: [Pushed] = []
        var inProgressID = ""
        let inProgressBytes = seededBytes(count: 300_000, seed: 40)

        try RegistryServer.withServer(root: root.path) { server in
            let client = server.client
            func expect201(_ response: HTTPResponse, _ what: String) {
                #expect(response.status == 201, "\(what): \(response.status) \(response.text)\n\(server.log.suffix(2000))")
            }
            let monolithic = seededBytes(count: 100_000, seed: 41)
            expect201(try client.pushMonolithic(repository: "library/alpine", bytes: monolithic, digest: "\(Digester.digest(of: monolithic))"), "monolithic")
            pushed.append(Pushed(repository: "library/alpine", bytes: monolithic, digest: Digester.digest(of: monolithic)))

            let chunked = seededBytes(count: 3 << 20, seed: 42)
            expect201(
                try client.pushChunked(repository: "team/app/web", bytes: chunked, digest: "\(Digester.digest(of: chunked))", chunkSize: 1 << 20),
                "chunked")
            pushed.append(Pushed(repository: "team/app/web", bytes: chunked, digest: Digester.digest(of: chunked)))

            let aliased = seededBytes(count: 5000, seed: 43)
            let sha512 = Digester.digest(of: aliased, algorithm: .sha512)
            expect201(try client.pushMonolithic(repository: "raw/sha512", bytes: aliased, digest: "\(sha512)"), "sha512")
            pushed.append(Pushed(repository: "raw/sha512", bytes: aliased, digest: sha512))

            expect201(try client.pushMonolithic(repository: "library/alpine", bytes: [], digest: "\(Digest.emptySHA256)"), "empty")
            pushed.append(Pushed(repository: "library/alpine", bytes: [], digest: Digest.emptySHA256))

            expect201(try client.mount(repository: "team/mounted", from: "library/alpine", digest: "\(Digester.digest(of: monolithic))"), "mount")
            pushed.append(Pushed(repository: "team/mounted", bytes: monolithic, digest: Digester.digest(of: monolithic)))

            // An upload the registry starts and we finish: its hash states must not be trusted blindly.
            let started = try client.send("POST", url: "/v2/resume/me/blobs/uploads/")
            #expect(started.status == 202, "\(started.text)")
            inProgressID = try #require(started.header("docker-upload-uuid"))
            let location = try #require(started.header("location"))
            let patch = try client.send(
                "PATCH", url: location,
                headers: ["Content-Type": "application/octet-stream", "Content-Range": "0-99999"],
                body: Array(inProgressBytes[..<100_000]))
            #expect(patch.status == 202, "\(patch.text)")
        }

        let registry = Registry(driver: try FilesystemDriver(root: root.path), cache: nil)
        // "resume/me" holds only an upload so far: not a repository until something is linked.
        #expect(try registry.repositories().map(\.value) == ["library/alpine", "raw/sha512", "team/app/web", "team/mounted"])
        for blob in pushed {
            let repository = try registry.repository(blob.repository)
            let descriptor = try repository.blobs.stat(blob.digest)
            #expect(descriptor == Descriptor(digest: blob.canonical, size: Int64(blob.bytes.count)), "\(blob.repository) \(blob.digest)")
            expectSameBytes(try repository.blobs.get(blob.digest), blob.bytes)
            var seen: [Digest] = []
            try repository.blobs.enumerate { seen.append($0) }
            #expect(seen.contains(blob.digest))
        }
        // Stored once, under sha256, for both the alias and the canonical digest.
        let sha512Repository = try registry.repository("raw/sha512")
        #expect(try sha512Repository.blobs.stat(pushed[2].canonical).digest == pushed[2].canonical)
        // Linked elsewhere only: unknown here.
        #expect(throws: BlobError.unknown(pushed[1].digest)) { try registry.repository("library/alpine").blobs.stat(pushed[1].digest) }

        // Finish the registry's upload through our writer; then the registry serves it.
        let resume = try registry.repository("resume/me")
        let writer = try resume.blobs.resume(id: inProgressID)
        #expect(writer.size == 100_000)
        try writer.write(Array(inProgressBytes[100_000...]))
        let finished = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: inProgressBytes), size: 0))
        #expect(finished.digest == Digester.digest(of: inProgressBytes))
        #expect(try registry.repositories().map(\.value).contains("resume/me"))
        try RegistryServer.withServer(root: root.path) { server in
            let response = try server.client.get(repository: "resume/me", digest: "\(finished.digest)")
            #expect(response.status == 200)
            expectSameBytes(response.body, inProgressBytes)
        }
    }
}
