import Distribution
import Glibc
@testable import Storage
import StorageDriver
import Testing
import TestSupport
#if canImport(StorageTesting)
import StorageTesting
#endif

/// What a file in a mount's `tags/` holds, decided from its bytes (TagFileContent), read back from
/// its upload (UploadWriter.writtenBytes), and made into a tag (Repository.tag(_:from:)), on both
/// drivers.
@Suite struct TagFileContentTests {
    static let v2 = "/docker/registry/v2"
    static let manifest = ManifestStoreTests.manifest(seed: 7)
    static let digest = Digester.digest(of: manifest)

    @Test func aDigestWithOrWithoutANewlineNamesThatManifest() throws {
        #expect(try TagFileContent(Array(Self.digest.description.utf8)) == .digest(Self.digest))
        #expect(try TagFileContent(Array("\(Self.digest)\n".utf8)) == .digest(Self.digest))
        #expect(try TagFileContent(Array("\(Self.digest)\n".utf8)).manifest == Self.digest)
        #expect(try TagFileContent([]) == .empty)
        #expect(try TagFileContent([]).manifest == nil)
    }

    @Test func aManifestsBytesAreThatManifest() throws {
        #expect(try TagFileContent(Self.manifest) == .manifest(Self.digest, bytes: Self.manifest))
        // Whitespace before the object, as a pretty-printer writes it, is still a manifest, also
        // a short one (an empty index).
        let indented = Array("\n  {\"schemaVersion\":2,\"manifests\":[]}".utf8)
        #expect(try TagFileContent(indented) == .manifest(Digester.digest(of: indented), bytes: indented))
        // An OCI index without a media type is served as one, so it is a manifest too.
        let index = Array(#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"\#(Self.digest)"}]}"#.utf8)
        #expect(try TagFileContent(index).manifest == Digester.digest(of: index))
    }

    @Test(arguments: [
        ("sha256:abc", "not a digest"),
        ("\(Digester.digest(of: [1]))\n\n", "not a digest"),
        (" \(Digester.digest(of: [1]))", "not a digest"),
        ("SHA256:" + String(repeating: "a", count: 64), "not a digest"),
        ("latest", "not a digest"),
        (#"{"schemaVersion":2,"mediaType":"text/plain"}"#, "unrecognized manifest content type"),
        (#"{"schemaVersion":3}"#, "unrecognized manifest schema version 3"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"md5:00"}}"#, "not a digest"),
        (#"{"schemaVersion":2,"#, "not a valid"),
        (String(repeating: "x", count: 300), "not a JSON object"),
    ])
    func anythingElseIsRefusedWithItsReason(text: String, reason: String) {
        do {
            let content = try TagFileContent(Array(text.utf8))
            Issue.record("accepted \(text.debugDescription) as \(content)")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.description.contains("sha256:<64 hex>"), "the log line says what is accepted: \(error)")
        }
    }

    @Test func aDigestOfAnotherAlgorithmOrTooManyBytesIsRefused() {
        let sha512 = Digester.digest(of: [1], algorithm: .sha512)
        #expect(throws: TagFileContentError.notSHA256(sha512)) { try TagFileContent(Array(sha512.description.utf8)) }
        let huge = Array("{".utf8) + [UInt8](repeating: 0x20, count: ManifestStore.sizeLimit)
        #expect(throws: TagFileContentError.tooLarge(size: huge.count)) { try TagFileContent(huge) }
    }

    /// The bytes of an upload read back are exactly the bytes written, at any size up to the
    /// limit; over the limit, or after the upload ended, they are refused.
    @Test(arguments: StoreFixture.kinds) func anUploadReadsBackWhatWasWritten(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let upload = try store.registry.repository("app").manifests.createUpload()
        #expect(try upload.writtenBytes(limit: 100) == [])
        let bytes = seededBytes(count: 70_000, seed: 1212)
        try bytes.withUnsafeBytes { try upload.write($0) }
        #expect(try upload.writtenBytes(limit: ManifestStore.sizeLimit) == bytes)
        #expect(throws: BlobError.self) { try upload.writtenBytes(limit: 1000) }
        // The data file changed behind the writer's back: never a mixed read.
        let data = try #require(try store.allFiles().first { $0.hasSuffix("/data") })
        try store.driver.putContent(dp(data), Array(bytes.reversed()))
        #expect(throws: BlobError.corruptUpload(id: upload.id, reason: "data is not what was written (70000 bytes read back, 70000 written)")) {
            try upload.writtenBytes(limit: ManifestStore.sizeLimit)
        }
        try upload.cancel()
        #expect(throws: BlobError.uploadUnknown(upload.id)) { try upload.writtenBytes(limit: 100) }
    }

    /// A digest tags at once (the manifest may come later); a manifest's bytes are stored as a
    /// revision first; a placeholder writes nothing.
    @Test(arguments: StoreFixture.kinds) func aTagIsMadeFromWhatTheFileHolds(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("app")
        #expect(try repository.tag(try Tag("v0"), from: .empty) == nil)
        #expect(try store.allFiles().isEmpty)

        #expect(try repository.tag(try Tag("v1"), from: TagFileContent(Array("\(Self.digest)\n".utf8))) == Self.digest)
        #expect(try repository.tags.current(try Tag("v1")) == Self.digest)
        #expect(throws: BlobError.unknown(Self.digest)) { try repository.manifests.get(Self.digest) }

        #expect(try repository.tag(try Tag("v2"), from: TagFileContent(Self.manifest)) == Self.digest)
        #expect(try repository.tags.current(try Tag("v2")) == Self.digest)
        #expect(try repository.manifests.get(Self.digest) == Self.manifest)
        #expect(try store.allFiles().contains("\(Self.v2)/repositories/app/_manifests/revisions/sha256/\(Self.digest.hex)/link"))
        // Bytes that do not hash to the digest they came with are never stored.
        let forged = TagFileContent.manifest(Self.digest, bytes: ManifestStoreTests.manifest(seed: 8))
        let before = try store.allFiles()
        #expect(throws: BlobError.self) { try repository.tag(try Tag("v3"), from: forged) }
        #expect(try store.allFiles() == before)
    }
}
