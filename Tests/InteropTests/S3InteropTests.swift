import Distribution
import Foundation
import S3
import Storage
import StorageDriver
import Testing
import TestSupport

/// Debian's docker-registry 2.8.2 with its own S3 driver and blobfs's storage layer over
/// `S3Driver`, on one bucket of a local moto and of radosgw (which checks every signature, and
/// keeps multipart ETags through the registry's UploadPartCopy moves), both ways: what the registry writes reads back
/// byte for byte, and what blobfs writes the registry serves.
@Suite(.serialized) struct S3InteropTests {
    /// A root directory of its own in the bucket of the process's moto or radosgw, for the
    /// registry and the driver.
    struct Bucket {
        let server: any S3TestServer
        let rootDirectory = "/interop-\(UUID().uuidString)"

        init(_ kind: S3ServerKind) async throws { server = try await kind.shared() }

        var registryStorage: RegistryS3Storage { server.registryStorage(rootDirectory: rootDirectory) }

        func driver(tuning: S3DriverTuning = S3DriverTuning()) -> S3Driver {
            let client = S3Client(
                S3Configuration(
                    endpoint: server.endpoint, region: server.region, bucket: server.bucket,
                    credentials: S3Credentials(accessKey: server.accessKey, secretKey: server.secretKey)))
            return S3Driver(client: client, rootDirectory: rootDirectory, tuning: tuning)
        }

        func withRegistryServer<T>(_ body: (RegistryServer) throws -> T) throws -> T {
            let server = try RegistryServer(s3: registryStorage)
            defer { server.stop() }
            return try body(server)
        }
    }

    @Test(arguments: S3ServerKind.allCases) func whatTheRegistryWritesToS3ReadsBackThroughTheS3Driver(server: S3ServerKind) async throws {
        let bucket = try await Bucket(server)
        let monolithic = seededBytes(count: 100_000, seed: 60)
        let chunked = seededBytes(count: (6 << 20) + 4321, seed: 61)  // PATCHes of 1 MiB: the registry's short-part path
        let (manifestBlobs, image) = ManifestInteropTests.image("team/app/web", tag: "v1", docker: false, seed: 62)

        try bucket.withRegistryServer { server in
            let client = server.client
            func expect201(_ response: HTTPResponse, _ what: String) {
                #expect(response.status == 201, "\(what): \(response.status) \(response.text)\n\(server.log.suffix(2000))")
            }
            expect201(try client.pushMonolithic(repository: "library/alpine", bytes: monolithic, digest: "\(Digester.digest(of: monolithic))"), "monolithic")
            expect201(
                try client.pushChunked(repository: "team/app/web", bytes: chunked, digest: "\(Digester.digest(of: chunked))", chunkSize: 1 << 20),
                "chunked")
            expect201(try client.mount(repository: "team/mounted", from: "library/alpine", digest: "\(Digester.digest(of: monolithic))"), "mount")
            for blob in manifestBlobs {
                expect201(try client.pushMonolithic(repository: image.repository, bytes: blob.bytes, digest: "\(Digester.digest(of: blob.bytes))"), "layer")
            }
            expect201(
                try client.send("PUT", url: "/v2/\(image.repository)/manifests/v1", headers: ["Content-Type": image.mediaType], body: image.bytes),
                "manifest")
        }

        let registry = Registry(driver: bucket.driver(), cache: nil)
        #expect(try registry.repositories().map(\.value) == ["library/alpine", "team/app/web", "team/mounted"])
        var expected = [("library/alpine", monolithic), ("team/app/web", chunked), ("team/mounted", monolithic)]
        expected += manifestBlobs.map { ("team/app/web", $0.bytes) }
        for (name, bytes) in expected {
            let digest = Digester.digest(of: bytes)
            let repository = try registry.repository(name)
            #expect(try repository.blobs.stat(digest) == Descriptor(digest: digest, size: Int64(bytes.count)), "\(name) \(digest)")
            expectSameBytes(try repository.blobs.get(digest), bytes, "\(name) \(digest)")
        }
        let web = try registry.repository("team/app/web")
        expectSameBytes(try web.manifests.get(image.digest), image.bytes, "the manifest")
        #expect(try web.tags.current(Tag("v1")) == image.digest)
        #expect(throws: BlobError.unknown(Digester.digest(of: chunked))) {
            try registry.repository("library/alpine").blobs.stat(Digester.digest(of: chunked))
        }
    }

    @Test(arguments: S3ServerKind.allCases) func whatBlobfsWritesToS3TheRegistryServes(server: S3ServerKind) async throws {
        let bucket = try await Bucket(server)
        // Parts of 5 MiB, so the 11 MiB blob is a real multipart upload, then moved by UploadPartCopy.
        let driver = bucket.driver(tuning: S3DriverTuning(partSize: S3DriverTuning.minimumPartSize, copyThreshold: 1 << 20))
        let registry = Registry(driver: driver, cache: nil)
        let big = seededBytes(count: (11 << 20) + 99, seed: 70)
        let web = try registry.repository("team/app/web")
        let writer = try web.blobs.create()
        for start in stride(from: 0, to: big.count, by: 300_001) {
            try writer.write(Array(big[start..<min(start + 300_001, big.count)]))
        }
        let bigDescriptor = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: big), size: Int64(big.count)))
        let small = Array("hello, registry on S3".utf8)
        let library = try registry.repository("library/ubuntu")
        let smallDescriptor = try library.blobs.put(mediaType: Descriptor.octetStream, small)
        _ = try library.blobs.mount(bigDescriptor.digest, from: web.blobs)
        let (manifestBlobs, image) = ManifestInteropTests.image("team/app/web", tag: "v2", docker: true, seed: 71)
        for blob in manifestBlobs { _ = try web.blobs.put(mediaType: blob.mediaType, blob.bytes) }
        try web.manifests.put(image.bytes, as: image.digest)
        try web.tags.tag(Tag("v2"), to: image.digest)

        // Nothing of ours is left in _uploads: the commits moved the data and removed the rest.
        var leftovers: [String] = []
        try driver.walk(try DriverPath("/docker/registry/v2/repositories")) { entry in
            if entry.path.value.contains("/_uploads") { leftovers.append(entry.path.value) }
            return .continue
        }
        #expect(leftovers == [])

        try bucket.withRegistryServer { server in
            var expected = [("team/app/web", big), ("library/ubuntu", small), ("library/ubuntu", big)]
            expected += manifestBlobs.map { ("team/app/web", $0.bytes) }
            for (name, bytes) in expected {
                let digest = Digester.digest(of: bytes)
                let get = try server.client.get(repository: name, digest: "\(digest)")
                #expect(get.status == 200, "GET \(name) \(digest): \(get.status)\n\(server.log.suffix(3000))")
                #expect(get.header("docker-content-digest") == "\(digest)")
                expectSameBytes(get.body, bytes, "GET \(name) \(digest)")
            }
            #expect(smallDescriptor.digest == Digester.digest(of: small))
            let manifest = try server.client.send(
                "GET", url: "/v2/team/app/web/manifests/v2", headers: ["Accept": ManifestInteropTests.acceptAll])
            #expect(manifest.status == 200, "\(manifest.text)")
            expectSameBytes(manifest.body, image.bytes, "the manifest by tag")
            let catalog = try server.client.send("GET", url: "/v2/_catalog")
            #expect(catalog.text.contains(#""repositories":["library/ubuntu","team/app/web"]"#), "\(catalog.text)")
        }
    }
}
