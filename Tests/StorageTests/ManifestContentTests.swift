import Distribution
import Storage
import Testing

/// The media type registry 2.8.2 serves for manifest bytes (manifeststore.go `Get`, then the
/// handler's `Payload()`), and the references a manifest names. The interop tests check the same
/// function against the real registry's `Content-Type`.
@Suite struct ManifestContentTests {
    static let config = "sha256:c059bfaa849c4d8e4aecaeb3a10c2d9b3d85f5165c66ad3a4d937758128c4d18"
    static let layer = "sha256:59bf1c3509f33515622619af21ed55bbe26d24913cedbca106468a5fb37a50c3"
    static let amd64 = "sha256:e7d92cdc71feacf90708cb59182d0df1b911f8ae022d29e8e95d75ca6a99776a"
    static let arm64 = "sha256:c3c3bb5b1c8b5c4b2b38b0f0c3e5f1b8a3b2d1c6b7e4f5a6b9c8d7e6f5a4b3c2"

    /// Pushed by `docker push` (Docker 20.10) of alpine:3.15.
    static let dockerSchema2 = """
        {
           "schemaVersion": 2,
           "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {
              "mediaType": "application/vnd.docker.container.image.v1+json",
              "size": 1472,
              "digest": "\(config)"
           },
           "layers": [
              {
                 "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                 "size": 2818413,
                 "digest": "\(layer)"
              }
           ]
        }
        """
    static let dockerList = """
        {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[\
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"\(amd64)","platform":{"architecture":"amd64","os":"linux"}},\
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"\(arm64)",\
        "platform":{"architecture":"arm64","os":"linux","variant":"v8","os.features":["x"],"features":["sse4"]}}]}
        """
    /// As umoci and skopeo write an OCI manifest (with `mediaType`, image-spec 1.0.2 and later).
    static let ociManifest = """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":\
        {"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":1472},"layers":[\
        {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layer)","size":2818413}],\
        "annotations":{"org.opencontainers.image.created":"2026-12-02T00:00:00Z"}}
        """
    static let ociIndex = """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(amd64)","size":555,"platform":{"architecture":"amd64","os":"linux"}},\
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(arm64)","size":555,"platform":{"architecture":"arm64","os":"linux"}}]}
        """
    /// image-spec 1.0.0 had no `mediaType` in manifests or indexes.
    static let untypedIndex = """
        {"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(amd64)","size":555}]}
        """
    static let untypedManifest = """
        {"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":1472},\
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layer)","size":2818413,\
        "urls":["https://example.com/layer"]}]}
        """
    /// A signed schema 1 manifest as registry 2.x stored it (shortened history, real structure).
    static let schema1Signed = """
        {
           "schemaVersion": 1,
           "name": "library/hello-world",
           "tag": "latest",
           "architecture": "amd64",
           "fsLayers": [
              {
                 "blobSum": "\(layer)"
              },
              {
                 "blobSum": "\(config)"
              }
           ],
           "history": [
              {
                 "v1Compatibility": "{\\"id\\":\\"a3ed95caeb02\\",\\"created\\":\\"2016-01-01T00:00:00Z\\"}"
              }
           ],
           "signatures": [
              {
                 "header": {
                    "jwk": {
                       "crv": "P-256",
                       "kid": "OD6I:6DRK:JXEJ:KBM4:255X:NSAA:MUSF:E4VM:ZI6W:CUN2:L4Z6:LSF4",
                       "kty": "EC",
                       "x": "3gAwX48IQ5oaYQAYSxor6rYYc_6yjuLCjtQ9LUakg4A",
                       "y": "t72ge6kIA1XOjqjVoEOiPPAURltJFBMGDSQvEGVB010"
                    },
                    "alg": "ES256"
                 },
                 "signature": "XREm0L8WNn27Ga_iE_vRnTxVMhhYY0Zst_FfkKopg6gWSoTOZTuW4rK0fg_IqnKkEKlbD83tD46LKEGi5aIVFg",
                 "protected": "eyJmb3JtYXRMZW5ndGgiOjY2MjgsImZvcm1hdFRhaWwiOiJDbjAiLCJ0aW1lIjoiMjAxNS0wNC0wOFQxODo1Mjo1OVoifQ"
              }
           ]
        }
        """

    @Test(arguments: [
        (dockerSchema2, ManifestMediaType.dockerSchema2),
        (dockerList, ManifestMediaType.dockerManifestList),
        (ociManifest, ManifestMediaType.ociManifest),
        (ociIndex, ManifestMediaType.ociIndex),
        (untypedIndex, ManifestMediaType.ociIndex),
        (untypedManifest, ManifestMediaType.ociManifest),
        (schema1Signed, ManifestMediaType.dockerSchema1Signed),
        // An empty `manifests` array is still not nil in Go: an index. A null one is nil: a manifest.
        (#"{"schemaVersion":2,"manifests":[]}"#, ManifestMediaType.ociIndex),
        (#"{"schemaVersion":2,"mediaType":"","manifests":null}"#, ManifestMediaType.ociManifest),
        (#"{"schemaVersion":2,"mediaType":null}"#, ManifestMediaType.ociManifest),
        // A declared index type is served as declared, whatever else the document holds.
        (#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}"#, ManifestMediaType.dockerManifestList),
        // schema 1 is chosen by the version alone.
        (#" {"schemaVersion":1,"mediaType":"application/vnd.oci.image.index.v1+json"}"#, ManifestMediaType.dockerSchema1Signed),
    ])
    func theServedMediaTypeIsTheOneTheRegistryPicks(json: String, expected: String) throws {
        #expect(try ManifestContent.servedMediaType(of: Array(json.utf8)) == expected)
    }

    @Test(arguments: [
        ("", "empty"),
        ("not json", "not JSON"),
        ("[1,2]", "an array"),
        ("null", "null"),
        ("\u{FEFF}{\"schemaVersion\":2,\"manifests\":[]}", "a byte order mark"),
        (#"{"schemaVersion":2,"manifests":[]} trailing"#, "trailing garbage"),
        (#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#, "no schemaVersion"),
        (#"{"schemaVersion":3,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#, "schemaVersion 3"),
        (#"{"schemaVersion":"2","mediaType":"application/vnd.oci.image.manifest.v1+json"}"#, "schemaVersion as a string"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#, "an unknown mediaType"),
        (#"{"schemaVersion":2,"mediaType":7}"#, "a numeric mediaType"),
        (#"{"schemaVersion":2,"manifests":"x"}"#, "untyped, manifests not an array"),
        (#"{"schemaVersion":2,"layers":5}"#, "untyped, layers not an array"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":[]}"#, "schema 2 config not an object"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"a":1}}"#, "OCI annotations not strings"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"size":"1"}]}"#, "index child size a string"),
    ])
    func bytesTheRegistryCannotServeSayWhy(json: String, what: String) {
        #expect(throws: ManifestContentError.self, "\(what)") { try ManifestContent.servedMediaType(of: Array(json.utf8)) }
        #expect(throws: ManifestContentError.self, "\(what)") { try ManifestContent.references(of: Array(json.utf8)) }
    }

    @Test func garbageBytesAreNotServable() {
        #expect(throws: ManifestContentError.self) { try ManifestContent.servedMediaType(of: [0xff, 0xfe, 0x00, 0x7b]) }
        #expect(throws: ManifestContentError.self) { try ManifestContent.servedMediaType(of: [UInt8](repeating: 0x7b, count: 10_000)) }
    }

    @Test func imageManifestsNameTheirConfigThenTheirLayers() throws {
        for json in [Self.dockerSchema2, Self.ociManifest] {
            let references = try ManifestContent.references(of: Array(json.utf8))
            #expect(references.map(\.role) == [.config, .layer])
            #expect(references.map(\.digest.description) == [Self.config, Self.layer])
            #expect(references.map(\.size) == [1472, 2818413])
        }
        let foreign = try ManifestContent.references(of: Array(Self.untypedManifest.utf8))
        #expect(foreign.last?.urls == ["https://example.com/layer"])
        #expect(foreign.last?.mediaType == "application/vnd.oci.image.layer.v1.tar+gzip")
    }

    @Test func listsAndIndexesNameTheirChildren() throws {
        for json in [Self.dockerList, Self.ociIndex] {
            let references = try ManifestContent.references(of: Array(json.utf8))
            #expect(references.map(\.role) == [.manifest, .manifest])
            #expect(references.map(\.digest.description) == [Self.amd64, Self.arm64])
        }
        #expect(try ManifestContent.references(of: Array(#"{"schemaVersion":2,"manifests":[]}"#.utf8)) == [])
    }

    @Test func schema1NamesItsBlobSums() throws {
        let references = try ManifestContent.references(of: Array(Self.schema1Signed.utf8))
        #expect(references.map(\.digest.description) == [Self.layer, Self.config])
        #expect(references.allSatisfy { $0.role == .layer && $0.size == nil })
    }

    @Test func aReferenceThatIsNoDigestIsReportedWithTheValue() throws {
        let json = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:abc","size":1}]}"#
        // The registry serves it (a digest is only a string to its decoder) …
        #expect(try ManifestContent.servedMediaType(of: Array(json.utf8)) == ManifestMediaType.ociIndex)
        // … but it names nothing that could be stored.
        #expect {
            try ManifestContent.references(of: Array(json.utf8))
        } throws: { error in
            guard case ManifestContentError.invalidReference("sha256:abc", _) = error else { return false }
            return true
        }
    }
}
