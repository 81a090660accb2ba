import Distribution
import Scrubber
import Storage
import StorageDriver
import StorageTesting
import Testing

/// `blobfs verify --images`: a tag's closure, on both drivers.
@Suite struct ImageCheckTests {
    /// A repository `app` with a config, a layer, an image manifest naming them, and `v1` on it.
    struct Image {
        let fixture: StoreFixture
        let config: Digest
        let layer: Digest
        let manifest: Digest
    }

    static func image(_ kind: String, extraLayer: String? = nil) throws -> Image {
        let fixture = try StoreFixture.make(kind)
        let repository = try fixture.registry.repository("app")
        let config = try repository.blobs.put(mediaType: "application/vnd.oci.image.config.v1+json", Array("{}".utf8)).digest
        let layer = try repository.blobs.put(mediaType: "application/vnd.oci.image.layer.v1.tar", Array("layer bytes".utf8)).digest
        let foreign = extraLayer ?? ""
        let json = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"\(config)"},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":11,"digest":"\(layer)"}\(foreign)]}
            """
        let manifest = try repository.manifests.put(Array(json.utf8), as: Digester.digest(of: Array(json.utf8))).digest
        try repository.tags.tag(try Tag("v1"), to: manifest)
        return Image(fixture: fixture, config: config, layer: layer, manifest: manifest)
    }

    @Test(arguments: StoreFixture.kinds)
    func aCompleteImageIsComplete(kind: String) throws {
        let image = try Self.image(kind)
        defer { image.fixture.close() }
        let report = try ImageCheck(registry: image.fixture.registry).check()
        #expect(report.images == 1 && report.incomplete.isEmpty, "\(report.incomplete)")
    }

    @Test(arguments: StoreFixture.kinds)
    func aLayerTheRepositoryDoesNotLinkMakesItIncomplete(kind: String) throws {
        let image = try Self.image(kind)
        defer { image.fixture.close() }
        try image.fixture.driver.delete(PathMapper.path(.layerLink(try RepositoryName("app"), image.layer)))
        let report = try ImageCheck(registry: image.fixture.registry).check()
        #expect(report.incomplete.count == 1)
        #expect(report.incomplete.first?.reference == "app:v1")
        #expect(report.incomplete.first?.missing == ["layer \(image.layer): not linked in the repository, or its data is gone"])
    }

    @Test(arguments: StoreFixture.kinds)
    func aConfigWhoseDataIsGoneOrAManifestThatIsGoneMakesItIncomplete(kind: String) throws {
        let image = try Self.image(kind)
        defer { image.fixture.close() }
        try image.fixture.driver.delete(PathMapper.path(.blob(image.config)))
        var report = try ImageCheck(registry: image.fixture.registry).check()
        #expect(report.incomplete.first?.missing.first?.hasPrefix("config \(image.config)") == true, "\(report.incomplete)")
        try image.fixture.driver.delete(PathMapper.path(.blob(image.manifest)))
        report = try ImageCheck(registry: image.fixture.registry).check()
        #expect(report.incomplete.first?.missing == ["manifest \(image.manifest): no revision link, or its data is gone"])
    }

    @Test(arguments: StoreFixture.kinds)
    func aForeignLayerNeedsNoLink(kind: String) throws {
        let foreign = Digester.digest(of: Array("foreign".utf8))
        let image = try Self.image(
            kind,
            extraLayer: #",{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":7,"digest":"\#(foreign)","urls":["https://example.com/layer"]}"#)
        defer { image.fixture.close() }
        #expect(try ImageCheck(registry: image.fixture.registry).check().incomplete.isEmpty)
    }

    @Test(arguments: StoreFixture.kinds)
    func anIndexNeedsEveryChild(kind: String) throws {
        let image = try Self.image(kind)
        defer { image.fixture.close() }
        let repository = try image.fixture.registry.repository("app")
        let absent = Digester.digest(of: Array("no such manifest".utf8))
        let json = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"\(image.manifest)"},\
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"\(absent)"}]}
            """
        let index = try repository.manifests.put(Array(json.utf8), as: Digester.digest(of: Array(json.utf8))).digest
        try repository.tags.tag(try Tag("multi"), to: index)
        let report = try ImageCheck(registry: image.fixture.registry).check()
        #expect(report.images == 2)
        #expect(report.incomplete.map(\.reference) == ["app:multi"])
        #expect(report.incomplete.first?.missing == ["manifest \(absent): no revision link, or its data is gone"])
    }
}
