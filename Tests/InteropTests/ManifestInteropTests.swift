import Distribution
import Foundation
import Storage
import StorageDriver
import Testing
import TestSupport

/// Manifests and tags between Debian's docker-registry 2.8.2 and blobfs's storage layer, both
/// ways: pushed over HTTP and read back through `ManifestStore`/`TagStore` byte for byte, with
/// the media type the registry answers; and written with `put`/`tag` into a fresh store, then
/// served by the registry by tag and by digest.
@Suite(.serialized) struct ManifestInteropTests {
    /// Every manifest type, so that a GET by tag is never refused or rewritten to schema 1.
    static let acceptAll = [
        ManifestMediaType.ociManifest, ManifestMediaType.ociIndex, ManifestMediaType.dockerSchema2,
        ManifestMediaType.dockerManifestList, ManifestMediaType.dockerSchema1Signed,
    ].joined(separator: ", ")

    /// One manifest of the fixture: where it goes, by which tag (nil: by digest only), its bytes.
    struct Image {
        var repository: String
        var tag: String?
        var bytes: [UInt8]
        var mediaType: String
        var digest: Digest { Digester.digest(of: bytes) }
    }

    /// A blob and the descriptor JSON that names it.
    struct Blob {
        var bytes: [UInt8]
        var mediaType: String
        var descriptor: String { #"{"mediaType":"\#(mediaType)","size":\#(bytes.count),"digest":"\#(Digester.digest(of: bytes))"}"# }
    }

    /// An image manifest over one config and one layer, in OCI or Docker schema 2 form.
    static func image(_ repository: String, tag: String?, docker: Bool, seed: UInt64) -> (blobs: [Blob], image: Image) {
        let config = Blob(
            bytes: Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":\#(seed)}"#.utf8),
            mediaType: docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json")
        let layer = Blob(
            bytes: seededBytes(count: 20_000 + Int(seed), seed: seed),
            mediaType: docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar+gzip")
        let mediaType = docker ? ManifestMediaType.dockerSchema2 : ManifestMediaType.ociManifest
        // Pretty-printed on purpose: the registry must keep the bytes as they are, not re-encode them.
        let json = """
            {
               "schemaVersion": 2,
               "mediaType": "\(mediaType)",
               "config": \(config.descriptor),
               "layers": [
                  \(layer.descriptor)
               ]
            }
            """
        return ([config, layer], Image(repository: repository, tag: tag, bytes: Array(json.utf8), mediaType: mediaType))
    }

    /// An OCI index over `children`.
    static func index(_ repository: String, tag: String, over children: [Image]) -> Image {
        let entries = children.map { child in
            #"{"mediaType":"\#(child.mediaType)","size":\#(child.bytes.count),"digest":"\#(child.digest)","platform":{"architecture":"arm\#(child.bytes.count % 7)","os":"linux"}}"#
        }
        let json = #"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.ociIndex)","manifests":[\#(entries.joined(separator: ","))]}"#
        return Image(repository: repository, tag: tag, bytes: Array(json.utf8), mediaType: ManifestMediaType.ociIndex)
    }

    /// The fixture: an OCI image, a Docker schema 2 image, and an OCI index over two untagged
    /// OCI children, each with its blobs; in push order (blobs, children, then what names them).
    static func fixture() -> [(blobs: [Blob], image: Image)] {
        let oci = image("team/app/web", tag: "v1", docker: false, seed: 1)
        let docker = image("legacy/tool", tag: "1.0", docker: true, seed: 2)
        let amd = image("multi/arch", tag: nil, docker: false, seed: 3)
        let arm = image("multi/arch", tag: nil, docker: false, seed: 4)
        let index = index("multi/arch", tag: "latest", over: [amd.image, arm.image])
        return [oci, docker, amd, arm, ([], index)]
    }

    @Test func manifestsPushedOverHTTPReadBackThroughManifestStore() throws {
        let root = try TemporaryDirectory(prefix: "blobfs-interop")
        defer { root.remove() }
        let fixture = Self.fixture()
        var served: [Digest: String] = [:]  // Content-Type of a GET by digest

        try RegistryServer.withServer(root: root.path) { server in
            let client = server.client
            for (blobs, image) in fixture {
                for blob in blobs {
                    let response = try client.pushMonolithic(repository: image.repository, bytes: blob.bytes, digest: "\(Digester.digest(of: blob.bytes))")
                    #expect(response.status == 201, "blob: \(response.text)")
                }
                let reference = image.tag ?? "\(image.digest)"
                let put = try client.send(
                    "PUT", url: "/v2/\(image.repository)/manifests/\(reference)", headers: ["Content-Type": image.mediaType], body: image.bytes)
                #expect(put.status == 201, "PUT \(image.repository):\(reference): \(put.status) \(put.text)\n\(server.log.suffix(2000))")
                #expect(put.header("docker-content-digest") == "\(image.digest)")
                for asked in [reference, "\(image.digest)"] {
                    let get = try client.send("GET", url: "/v2/\(image.repository)/manifests/\(asked)", headers: ["Accept": Self.acceptAll])
                    #expect(get.status == 200, "GET \(image.repository):\(asked): \(get.text)")
                    #expect(get.body == image.bytes)
                    served[image.digest] = get.header("content-type")
                }
            }
        }

        let registry = Registry(driver: try FilesystemDriver(root: root.path), cache: nil)
        for (_, image) in fixture {
            let repository = try registry.repository(image.repository)
            expectSameBytes(try repository.manifests.get(image.digest), image.bytes, "\(image.repository) \(image.digest)")
            #expect(try ManifestContent.servedMediaType(of: try repository.manifests.get(image.digest)) == served[image.digest])
            #expect(served[image.digest] == image.mediaType)
            let file = try repository.manifests.resolve(image.digest)
            #expect(file.size == Int64(image.bytes.count) && file.linkSet == .manifestRevisions)
            #expect(try repository.manifests.revisions().contains(ManifestRevision(digest: image.digest, file: .success(file))))
            if let tag = image.tag {
                #expect(try repository.tags.current(Tag(tag)) == image.digest)
            }
        }
        #expect(try registry.repository("multi/arch").tags.all().map(\.value) == ["latest"])
        #expect(try registry.repository("multi/arch").manifests.revisions().count == 3, "the index and both children")
        let index = fixture[4].image
        #expect(try ManifestContent.references(of: index.bytes).map(\.digest) == [fixture[2].image.digest, fixture[3].image.digest])
        let web = try ManifestContent.references(of: fixture[0].image.bytes)
        #expect(web.map(\.digest) == fixture[0].blobs.map { Digester.digest(of: $0.bytes) })
        for reference in web {
            #expect(try registry.repository("team/app/web").blobs.stat(reference.digest).size == reference.size)
        }
    }

    @Test func manifestsWrittenByManifestStoreAreServedByTheRegistry() throws {
        let root = try TemporaryDirectory(prefix: "blobfs-interop")
        defer { root.remove() }
        let registry = Registry(driver: try FilesystemDriver(root: root.path))
        let fixture = Self.fixture()
        // Written in reverse, tags first: a restore's files arrive in any order.
        for (blobs, image) in fixture.reversed() {
            let repository = try registry.repository(image.repository)
            if let tag = image.tag { try repository.tags.tag(Tag(tag), to: image.digest) }
            #expect(try repository.manifests.put(image.bytes, as: image.digest).mediaType == image.mediaType)
            for blob in blobs { _ = try repository.blobs.put(mediaType: blob.mediaType, blob.bytes) }
        }
        // A repository with a manifest and a tag but no blob: the put alone makes it a repository
        // (its `_layers`), so the catalog lists it.
        let only = try registry.repository("only/manifests")
        try only.manifests.put(fixture[0].image.bytes, as: fixture[0].image.digest)
        try only.tags.tag(Tag("orphan"), to: fixture[0].image.digest)

        try RegistryServer.withServer(root: root.path) { server in
            let client = server.client
            for (_, image) in fixture + [([], Image(repository: "only/manifests", tag: "orphan", bytes: fixture[0].image.bytes, mediaType: fixture[0].image.mediaType))] {
                for asked in [image.tag, "\(image.digest)"].compactMap({ $0 }) {
                    let get = try client.send("GET", url: "/v2/\(image.repository)/manifests/\(asked)", headers: ["Accept": Self.acceptAll])
                    #expect(get.status == 200, "GET \(image.repository):\(asked): \(get.status) \(get.text)\n\(server.log.suffix(2000))")
                    #expect(get.body == image.bytes)
                    #expect(get.header("docker-content-digest") == "\(image.digest)")
                    #expect(get.header("content-type") == image.mediaType)
                }
            }
            for (blobs, image) in fixture {
                for blob in blobs {
                    let head = try client.head(repository: image.repository, digest: "\(Digester.digest(of: blob.bytes))")
                    #expect(head.status == 200)
                }
            }
            let catalog = try client.send("GET", url: "/v2/_catalog")
            #expect(catalog.status == 200)
            let names = try #require(try JSONSerialization.jsonObject(with: Data(catalog.body)) as? [String: [String]])["repositories"]
            #expect(names == ["legacy/tool", "multi/arch", "only/manifests", "team/app/web"])
            let tags = try client.send("GET", url: "/v2/multi/arch/tags/list")
            #expect(tags.text.contains(#""tags":["latest"]"#), "\(tags.text)")
        }
    }

    /// `ManifestContent.servedMediaType` against the real registry's answer to a GET by digest,
    /// for the documents whose type is decided by the rules rather than declared: no mediaType,
    /// an empty or null `manifests`, schema 1, and content the registry cannot serve at all.
    @Test func theServedMediaTypeIsTheRegistrysContentType() throws {
        let root = try TemporaryDirectory(prefix: "blobfs-interop")
        defer { root.remove() }
        let manifests = try Registry(driver: try FilesystemDriver(root: root.path)).repository("media/types").manifests
        let layer = Digester.digest(of: [1])
        let documents = [
            #"{"schemaVersion":2,"config":{"digest":"\#(layer)","size":1},"layers":[]}"#,
            #"{"schemaVersion":2,"manifests":[]}"#,
            #"{"schemaVersion":2,"mediaType":"","manifests":null}"#,
            #"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.dockerManifestList)"}"#,
            #"{"schemaVersion":1,"name":"media/types","tag":"old","fsLayers":[{"blobSum":"\#(layer)"}],"history":[{"v1Compatibility":"{}"}]}"#,
            #"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#,
            #"{"schemaVersion":3}"#,
            #"{"schemaVersion":2,"manifests":"x"}"#,
            #"{"schemaVersion":2,"layers":5}"#,
            "[]",
            "not json",
        ].map { Array($0.utf8) }
        for bytes in documents { try manifests.put(bytes, as: Digester.digest(of: bytes)) }

        try RegistryServer.withServer(root: root.path) { server in
            for bytes in documents {
                let text = String(decoding: bytes, as: UTF8.self)
                // A request the registry's handler dies on has no answer at all.
                let get = try? server.client.send(
                    "GET", url: "/v2/media/types/manifests/\(Digester.digest(of: bytes))", headers: ["Accept": Self.acceptAll])
                do {
                    let expected = try ManifestContent.servedMediaType(of: bytes)
                    #expect(get?.status == 200, "\(text): \(get?.status ?? 0) \(get?.text ?? "")")
                    #expect(get?.header("content-type") == expected, "\(text)")
                } catch {
                    #expect(get?.status != 200, "\(text) is served: \(get?.header("content-type") ?? "")")
                }
            }
        }
    }
}
