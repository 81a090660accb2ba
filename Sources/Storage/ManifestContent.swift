import Distribution
import FoundationEssentials

/// What a manifest's bytes mean to registry 2.8.2: the media type a GET answers with, and the
/// blobs and manifests it names. Pure: bytes in, answer out; nothing is read from storage.
///
/// The type follows `manifestStore.Get` (registry/storage/manifeststore.go) and the `Payload()`
/// of the handler it picks, exactly in this order (images-spec §1.2, §4.2):
/// 1. the bytes must decode as a JSON object into `{schemaVersion int, mediaType string}`;
/// 2. `schemaVersion` 1 is a signed schema 1 manifest, served as `…v1+prettyjws`;
/// 3. `schemaVersion` 2 picks by `mediaType`: Docker schema 2 and OCI manifest are served as
///    themselves, a Docker manifest list or an OCI index as the type it declares; any other
///    non-empty type is refused ("unrecognized manifest content type");
/// 4. an empty (or absent, or null) `mediaType` decodes as a manifest list first: if that fails
///    the registry cannot serve it (2.8.2 then asserts on a nil result and the request dies); if
///    `manifests` is present and not null (an empty array counts) it is an OCI index, otherwise it
///    decodes as an OCI manifest, served as the OCI manifest type;
/// 5. any other `schemaVersion` (0 when absent) is refused.
///
/// Each decode uses the Go structs' field types, so a field of the wrong JSON type fails here as
/// it fails there; the interop tests check these rules against the registry's `Content-Type`.
/// Foundation's decoder and Go's `encoding/json` differ on documents no client produces, and
/// there this function may answer otherwise than the registry: Go matches keys
/// case-insensitively (here exactly), lets the last of duplicate keys win (here the first),
/// accepts invalid UTF-8 in strings (here refused), and refuses `2.0` or `2e0` for an integer
/// (here 2).
public enum ManifestContent {
    /// The `Content-Type` registry 2.8.2 answers a GET of these bytes with (given an `Accept`
    /// that lists every type), or why it answers with an error instead.
    public static func servedMediaType(of bytes: [UInt8]) throws(ManifestContentError) -> String {
        try Kind(bytes).servedMediaType
    }

    /// The blobs and manifests these bytes name, in document order, as the registry's
    /// `References()` lists them: the config then the layers of an image manifest, the children
    /// of a list or an index, the `fsLayers` of a schema 1 manifest (bottom layer last, as
    /// written). Read the way a GET reads the bytes (`servedMediaType`), so both agree on the kind.
    public static func references(of bytes: [UInt8]) throws(ManifestContentError) -> [ManifestReference] {
        try Kind(bytes).references()
    }

    /// `servedMediaType` and `references` from one reading of the bytes (OCI index.json needs
    /// both of every revision): the media type, or why the registry cannot serve the bytes (then
    /// there are no references either), and the references or why they cannot be read.
    public static func servedMediaTypeAndReferences(
        of bytes: [UInt8]
    ) throws(ManifestContentError) -> (servedMediaType: String, references: Result<[ManifestReference], ManifestContentError>) {
        let kind = try Kind(bytes)
        return (kind.servedMediaType, Result { () throws(ManifestContentError) in try kind.references() })
    }
}

/// Why manifest bytes cannot be served, or name something that is not a digest.
public enum ManifestContentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Registry 2.8.2 answers a GET of these bytes with an error.
    case notServable(reason: String)
    /// A reference whose `digest` (or schema 1 `blobSum`) is not a valid digest.
    case invalidReference(String, reason: String)

    public var description: String {
        switch self {
        case .notServable(let reason): "registry 2.8.2 cannot serve this manifest: \(reason)"
        case .invalidReference(let value, let reason): "manifest names \(value.debugDescription), not a digest: \(reason)"
        }
    }
}

/// One blob or manifest a manifest names.
public struct ManifestReference: Sendable, Hashable {
    public enum Role: Sendable, Hashable {
        /// An image manifest's config.
        case config
        /// An image manifest's layer (or a schema 1 `blobSum`).
        case layer
        /// A child manifest of a list or an index.
        case manifest
    }

    public var role: Role
    public var digest: Digest
    /// The descriptor's media type; empty where the manifest gives none (schema 1).
    public var mediaType: String
    /// The descriptor's size; nil where the manifest gives none (schema 1).
    public var size: Int64?
    /// A foreign layer's URLs: the registry does not require such a layer to be linked.
    public var urls: [String]
}

/// The handler 2.8.2's manifest store picks for some bytes, with the struct it decoded.
private enum Kind {
    case schema1(Schema1Manifest)
    case schema2(ImageManifest)
    case ociManifest(ImageManifest)
    /// A Docker manifest list or an OCI index, and the type it is served as.
    case list(ManifestList, mediaType: String)

    init(_ bytes: [UInt8]) throws(ManifestContentError) {
        // Go decodes only UTF-8 and a top-level object into a struct; Foundation would also
        // detect UTF-16 and UTF-32 from a byte order mark.
        let jsonWhitespace: Set<UInt8> = [0x20, 0x09, 0x0a, 0x0d]
        guard bytes.first(where: { !jsonWhitespace.contains($0) }) == UInt8(ascii: "{") else {
            throw .notServable(reason: "not a JSON object")
        }
        let versioned = try decode(Versioned.self, bytes)
        switch versioned.schemaVersion ?? 0 {
        case 1:
            self = .schema1(try decode(Schema1Manifest.self, bytes))
        case 2:
            switch versioned.mediaType ?? "" {
            case ManifestMediaType.dockerSchema2:
                self = .schema2(try decode(ImageManifest.self, bytes))
            case ManifestMediaType.ociManifest:
                self = .ociManifest(try decodeOCIManifest(bytes))
            case let declared where declared == ManifestMediaType.dockerManifestList || declared == ManifestMediaType.ociIndex:
                self = .list(try decode(ManifestList.self, bytes), mediaType: declared)
            case "":
                let list = try decode(ManifestList.self, bytes)
                if list.manifests != nil {
                    self = .list(list, mediaType: ManifestMediaType.ociIndex)
                } else {
                    self = .ociManifest(try decodeOCIManifest(bytes))
                }
            case let other:
                throw .notServable(reason: "unrecognized manifest content type \(other.debugDescription)")
            }
        case let other:
            throw .notServable(reason: "unrecognized manifest schema version \(other)")
        }
    }

    var servedMediaType: String {
        switch self {
        case .schema1: ManifestMediaType.dockerSchema1Signed
        case .schema2: ManifestMediaType.dockerSchema2
        case .ociManifest: ManifestMediaType.ociManifest
        case .list(_, let mediaType): mediaType
        }
    }

    func references() throws(ManifestContentError) -> [ManifestReference] {
        switch self {
        case .schema1(let manifest):
            return try (manifest.fsLayers ?? []).map { layer throws(ManifestContentError) in
                ManifestReference(role: .layer, digest: try parse(layer.blobSum ?? ""), mediaType: "", size: nil, urls: [])
            }
        case .schema2(let manifest), .ociManifest(let manifest):
            let config = try manifest.config.map { config throws(ManifestContentError) in [try config.reference(.config)] } ?? []
            return config + (try (manifest.layers ?? []).map { layer throws(ManifestContentError) in try layer.reference(.layer) })
        case .list(let list, _):
            return try (list.manifests ?? []).map { child throws(ManifestContentError) in try child.reference(.manifest) }
        }
    }
}

private func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(ManifestContentError) -> T {
    do {
        return try JSONDecoder().decode(type, from: Data(bytes))
    } catch {
        throw .notServable(reason: "not a valid \(type): \(error)")
    }
}

/// ocischema.Manifest is schema2.Manifest with `annotations`.
private func decodeOCIManifest(_ bytes: [UInt8]) throws(ManifestContentError) -> ImageManifest {
    _ = try decode(OCIAnnotations.self, bytes)
    return try decode(ImageManifest.self, bytes)
}

private func parse(_ value: String) throws(ManifestContentError) -> Digest {
    do {
        return try Digest(parsing: value)
    } catch {
        throw .invalidReference(value, reason: error.description)
    }
}

// The Go structs 2.8.2 decodes into (only the fields whose types a decode checks). Every field is
// optional: Go leaves an absent or null field at its zero value.

/// manifest.Versioned.
private struct Versioned: Decodable {
    var schemaVersion: Int?
    var mediaType: String?
}

/// distribution.Descriptor, as an image manifest's config and layers and a list's children hold it.
private struct GoDescriptor: Decodable {
    var mediaType: String?
    var size: Int64?
    var digest: String?
    var urls: [String]?
    var annotations: [String: String]?
    var platform: Platform?

    func reference(_ role: ManifestReference.Role) throws(ManifestContentError) -> ManifestReference {
        ManifestReference(role: role, digest: try parse(digest ?? ""), mediaType: mediaType ?? "", size: size, urls: urls ?? [])
    }
}

/// The platform of a descriptor (v1.Platform) or of a list's child (manifestlist.PlatformSpec):
/// the same string fields, the latter with `features`.
private struct Platform: Decodable {
    var architecture: String?
    var os: String?
    var osVersion: String?
    var osFeatures: [String]?
    var variant: String?
    var features: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant, features
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }
}

/// schema2.Manifest and ocischema.Manifest.
private struct ImageManifest: Decodable {
    var config: GoDescriptor?
    var layers: [GoDescriptor]?
}

private struct OCIAnnotations: Decodable {
    var annotations: [String: String]?
}

/// manifestlist.ManifestList: an OCI index or a Docker list.
private struct ManifestList: Decodable {
    var manifests: [GoDescriptor]?
}

/// schema1.Manifest: only the layers it names.
private struct Schema1Manifest: Decodable {
    struct FSLayer: Decodable { var blobSum: String? }
    var fsLayers: [FSLayer]?
}
