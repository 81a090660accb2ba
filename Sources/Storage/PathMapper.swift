import Distribution
import StorageDriver

/// Every path of the registry's storage layout (docs/architecture.md, "What is on disk"), built only from validated
/// names, digests, tags and upload ids, so no user input can reach outside the tree.
public enum PathSpec: Sendable, Hashable {
    case blobs
    case blob(Digest)
    case blobData(Digest)
    /// `blobs/<alg>`: the directory a blob's data file is `dataFile(below:)` in.
    case blobsOfAlgorithm(DigestAlgorithm)
    case repositoriesRoot
    case repository(RepositoryName)
    case layers(RepositoryName)
    case layerLink(RepositoryName, Digest)
    /// `_layers/<alg>`: the directory a link is `link(below:)` in.
    case layerLinks(RepositoryName, DigestAlgorithm)
    case manifests(RepositoryName)
    case manifestRevisions(RepositoryName)
    case manifestRevision(RepositoryName, Digest)
    case manifestRevisionLink(RepositoryName, Digest)
    case manifestRevisionLinks(RepositoryName, DigestAlgorithm)
    case manifestTags(RepositoryName)
    case manifestTag(RepositoryName, Tag)
    case manifestTagCurrent(RepositoryName, Tag)
    case manifestTagIndex(RepositoryName, Tag)
    case manifestTagIndexEntry(RepositoryName, Tag, Digest)
    case manifestTagIndexEntryLink(RepositoryName, Tag, Digest)
    case uploads(RepositoryName)
    case upload(RepositoryName, UploadID)
    case uploadData(RepositoryName, UploadID)
    case uploadStartedAt(RepositoryName, UploadID)
    case uploadHashStates(RepositoryName, UploadID, DigestAlgorithm)
    case uploadHashState(RepositoryName, UploadID, DigestAlgorithm, offset: Int64)
}

/// Maps path specs to driver paths and back.
public enum PathMapper {
    /// `/docker/registry/` joined with the version `v2`.
    public static let rootPrefix = "/docker/registry/v2"

    /// The table: one line per spec.
    public static func path(_ spec: PathSpec) -> DriverPath {
        let r = rootPrefix
        let components: String =
            switch spec {
            case .blobs: "\(r)/blobs"
            case .blob(let d): "\(r)/blobs/\(d.algorithm.rawValue)/\(d.hex.prefix(2))/\(d.hex)"
            case .blobData(let d): "\(r)/blobs/\(d.algorithm.rawValue)/\(d.hex.prefix(2))/\(d.hex)/data"
            case .blobsOfAlgorithm(let a): "\(r)/blobs/\(a.rawValue)"
            case .repositoriesRoot: "\(r)/repositories"
            case .repository(let n): "\(r)/repositories/\(n)"
            case .layers(let n): "\(r)/repositories/\(n)/_layers"
            case .layerLink(let n, let d): "\(r)/repositories/\(n)/_layers/\(d.algorithm.rawValue)/\(d.hex)/link"
            case .layerLinks(let n, let a): "\(r)/repositories/\(n)/_layers/\(a.rawValue)"
            case .manifests(let n): "\(r)/repositories/\(n)/_manifests"
            case .manifestRevisions(let n): "\(r)/repositories/\(n)/_manifests/revisions"
            case .manifestRevision(let n, let d): "\(r)/repositories/\(n)/_manifests/revisions/\(d.algorithm.rawValue)/\(d.hex)"
            case .manifestRevisionLink(let n, let d):
                "\(r)/repositories/\(n)/_manifests/revisions/\(d.algorithm.rawValue)/\(d.hex)/link"
            case .manifestRevisionLinks(let n, let a): "\(r)/repositories/\(n)/_manifests/revisions/\(a.rawValue)"
            case .manifestTags(let n): "\(r)/repositories/\(n)/_manifests/tags"
            case .manifestTag(let n, let t): "\(r)/repositories/\(n)/_manifests/tags/\(t)"
            case .manifestTagCurrent(let n, let t): "\(r)/repositories/\(n)/_manifests/tags/\(t)/current/link"
            case .manifestTagIndex(let n, let t): "\(r)/repositories/\(n)/_manifests/tags/\(t)/index"
            case .manifestTagIndexEntry(let n, let t, let d):
                "\(r)/repositories/\(n)/_manifests/tags/\(t)/index/\(d.algorithm.rawValue)/\(d.hex)"
            case .manifestTagIndexEntryLink(let n, let t, let d):
                "\(r)/repositories/\(n)/_manifests/tags/\(t)/index/\(d.algorithm.rawValue)/\(d.hex)/link"
            case .uploads(let n): "\(r)/repositories/\(n)/_uploads"
            case .upload(let n, let id): "\(r)/repositories/\(n)/_uploads/\(id)"
            case .uploadData(let n, let id): "\(r)/repositories/\(n)/_uploads/\(id)/data"
            case .uploadStartedAt(let n, let id): "\(r)/repositories/\(n)/_uploads/\(id)/startedat"
            case .uploadHashStates(let n, let id, let a): "\(r)/repositories/\(n)/_uploads/\(id)/hashstates/\(a.rawValue)"
            case .uploadHashState(let n, let id, let a, let offset):
                "\(r)/repositories/\(n)/_uploads/\(id)/hashstates/\(a.rawValue)/\(offset)"
            }
        // Every part above is validated to the driver path grammar already (checked again in
        // debug builds, which the tests run).
        return DriverPath(composedOfValidParts: components)
    }

    /// Where a blob's data file lies below `path(.blobsOfAlgorithm(digest.algorithm))`:
    /// `<hex[0:2]>/<hex>/data`, as `path(.blobData(digest))` spells it.
    public static func dataFile(below digest: Digest) -> String {
        "\(digest.hex.prefix(2))/\(digest.hex)/data"
    }

    /// Where a link lies below its set's directory of the digest's algorithm (`_layers/sha256`,
    /// `_manifests/revisions/sha256`): `<hex>/link`.
    public static func link(below digest: Digest) -> String {
        digest.hex + "/link"
    }

    /// The blob store's `blobs/<alg>` directory, spelled once per algorithm (a cold lookup stats
    /// below one).
    static func blobDirectory(_ algorithm: DigestAlgorithm) -> DriverPath {
        switch algorithm {
        case .sha256: sha256Blobs
        case .sha384: sha384Blobs
        case .sha512: sha512Blobs
        }
    }

    private static let sha256Blobs = path(.blobsOfAlgorithm(.sha256))
    private static let sha384Blobs = path(.blobsOfAlgorithm(.sha384))
    private static let sha512Blobs = path(.blobsOfAlgorithm(.sha512))

    /// The digest of a blob store `data` path (the GC's reverse mapping, docs/architecture.md, "What is on disk"):
    /// `…/blobs/sha256/99/9943…/data` → `sha256:9943…`.
    public static func digest(fromBlobDataPath path: DriverPath) throws(BlobError) -> Digest {
        let blobsPrefix = Self.path(.blobs).value + "/"
        guard path.value.hasPrefix(blobsPrefix), path.name == "data" else {
            throw .invalidDigestString(.invalidFormat(path.value))
        }
        var parts = path.value.dropFirst(blobsPrefix.count).split(separator: "/").dropLast()
        guard let hex = parts.popLast(), let parent = parts.popLast() else {
            throw .invalidDigestString(.invalidFormat(path.value))
        }
        // Multilevel form: <alg>/<hex[0:2]>/<hex>; otherwise the parent is the algorithm.
        let algorithm = parent == hex.prefix(2) ? parts.popLast().map(String.init) ?? "" : String(parent)
        do {
            return try Digest(parsing: "\(algorithm):\(hex)")
        } catch {
            throw .invalidDigestString(error)
        }
    }
}
