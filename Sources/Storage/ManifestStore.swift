import Distribution
import Glibc
import Logging
import StorageDriver

/// One repository's manifests: the revisions it links under `_manifests/revisions`, read from
/// storage (never from a cache), and written as registry 2.8.2's `linkedBlobStore.Put` writes a
/// pushed manifest (docs/storage-format.md, Manifests and tags).
///
/// **The 2.1.0 layout.** Registry 2.1.0 linked manifests under `_layers` by mistake, and 2.8.2's
/// manifest statter still tries `_manifests/revisions` first and `_layers` second, so a tag
/// whose manifest only `_layers` names is served (images-spec §1.1, "Reads try both"; variant V3
/// of §2). Lookups by digest (`linkTarget`, `resolve`, `get`) do the same, so such a tag resolves
/// and reads in blobfs where the registry serves it, and a backup of it brings the manifest back
/// (a restore writes a proper revision link). Listings (`revisions()`) do not: every `_layers`
/// digest is a config or a layer as often as a manifest, and only the caller knows which digests
/// a tag points at, so it is the caller that shows a `_layers`-only manifest, and only as a tag's
/// target (images-spec §4.2). `ManifestFile.linkSet` says where a lookup found the link.
/// Writes use `_manifests/revisions` only, as every registry since 2.1.1 does.
public struct ManifestStore: Sendable {
    public let repository: RepositoryName
    let driver: any StorageDriver
    let global: GlobalBlobStore
    let logger: Logger

    /// The registry refuses manifest bodies over 4 MiB (`maxManifestBodySize`, handlers/manifests.go).
    public static let sizeLimit = 4 << 20

    /// Where a lookup by digest looks, in the registry's order (registry.go, "Need to search
    /// through multiple locations since 2.1.0 unintentionally linked into _layers").
    static let lookupLinkSets: [LinkSet] = [.manifestRevisions, .layers]

    /// Every revision of this repository, sorted by digest, in one pass over
    /// `_manifests/revisions/<alg>/` (as `LinkedBlobStore.links()`), each with its data file
    /// statted. A revision whose link is empty (a write in progress, a crash leftover) or whose
    /// data is gone (2.8.2's GC leaves such links) is left out, as the registry's GC enumeration
    /// skips it; a corrupt link or a data file that cannot be read is one failed entry, not a
    /// failed listing.
    public func revisions() throws(BlobError) -> [ManifestRevision] {
        let root = LinkSet.manifestRevisions.root(repository)
        var found: [(digest: Digest, target: Result<Digest?, BlobError>)] = []
        let algorithms: [String]
        switch Result(catching: { () throws(StorageDriverError) in try driver.list(root) }) {
        case .success(let names): algorithms = names
        case .failure(.pathNotFound): return []
        case .failure(let error): throw error.blobError
        }
        for algorithm in algorithms.compactMap(DigestAlgorithm.init(rawValue:)) {
            let directory = try driverCall { () throws(StorageDriverError) in try root.appending(algorithm.rawValue) }
            let members: [ChildMember]
            switch Result(catching: { () throws(StorageDriverError) in try driver.members(named: "link", in: directory, limit: LinkedBlobStatter.linkLimit) }) {
            case .success(let read): members = read
            case .failure(.pathNotFound): continue  // a file, or removed meanwhile
            case .failure(let error): throw error.blobError
            }
            for member in members {
                guard let digest = try? Digest(parsing: "\(algorithm.rawValue):\(member.child)") else { continue }
                let path = (try? directory.appending(member.child).appending("link")) ?? directory
                found.append((digest, Result { () throws(BlobError) -> Digest? in
                    let target = try LinkedBlobStatter.target(ofLink: member.content, at: path)
                    if let target { try LinkedBlobStatter.checkTarget(target, of: digest, at: path) }
                    return target
                }))
            }
        }
        // One stat per revision, spread over the CPUs for a large repository.
        let statted = found.concurrentMap { entry -> ManifestRevision? in
            switch entry.target {
            case .failure(let error):
                return ManifestRevision(digest: entry.digest, file: .failure(error))
            case .success(nil):
                logger.debug("empty manifest revision link left out", metadata: ["repository": "\(repository)", "digest": "\(entry.digest)"])
                return nil
            case .success(let target?):
                switch statData(target) {
                case .success(let data):
                    return ManifestRevision(digest: entry.digest, file: .success(file(entry.digest, data, linkSet: .manifestRevisions)))
                case .failure(.unknown):
                    logger.info("manifest revision linked, but its data is gone: left out",
                        metadata: ["repository": "\(repository)", "digest": "\(entry.digest)"])
                    return nil
                case .failure(let error):
                    return ManifestRevision(digest: entry.digest, file: .failure(error))
                }
            }
        }
        return statted.compactMap { $0 }
    }

    /// The digest this repository's link for `digest` holds, read from storage: the revision
    /// link, else the 2.1.0 `_layers` link (see the type's comment). The link must hold `digest`
    /// itself (`corruptLink` otherwise); no link, or an empty one, is `unknown`.
    public func linkTarget(_ digest: Digest) throws(BlobError) -> Digest {
        try findLink(digest).target
    }

    /// The manifest `digest` as storage has it now: its link (`linkTarget`), then one stat of its
    /// data file. A link whose data is gone is `unknown`, as the registry answers.
    public func resolve(_ digest: Digest) throws(BlobError) -> ManifestFile {
        let link = try findLink(digest)
        switch statData(link.target) {
        case .success(let data): return file(digest, data, linkSet: link.linkSet)
        case .failure(.unknown): throw BlobError.unknown(digest)
        case .failure(let error): throw error
        }
    }

    /// The manifest's bytes, at most `sizeLimit` of them (a larger data file is refused with
    /// EFBIG, never cut short).
    public func get(_ digest: Digest) throws(BlobError) -> [UInt8] {
        let target = try linkTarget(digest)
        switch Result(catching: { () throws(StorageDriverError) in try driver.getContent(PathMapper.path(.blobData(target)), limit: Self.sizeLimit) }) {
        case .success(let bytes): return bytes
        case .failure(.pathNotFound): throw BlobError.unknown(digest)
        case .failure(let error): throw error.blobError
        }
    }

    /// Stores `bytes` as the manifest `digest` the way a registry PUT does, for a restore: the
    /// bytes must hash to `digest`, a sha256 digest (2.8.2 stores manifests under sha256 only);
    /// then the data file, written directly as `blobStore.Put` writes it (not through
    /// `_uploads`; skipped when a data file of that size exists, checked on the driver), then the
    /// revision link, then `_layers`, so that the repository is in the catalog. Nothing is written
    /// when a check fails. Bytes the registry could not serve (`ManifestContent`) are stored
    /// anyway and logged, so that a backup comes back byte for byte; no reference is checked,
    /// since a restore's files arrive in any order (images-spec §5). Putting the same manifest
    /// again changes nothing. Returns the stored descriptor, with the media type 2.8.2 serves
    /// (`application/octet-stream` for bytes it cannot serve).
    @discardableResult
    public func put(_ bytes: [UInt8], as digest: Digest) throws(BlobError) -> Descriptor {
        guard digest.algorithm == .sha256 else {
            throw BlobError.invalidDigest(digest, reason: "registry 2.8.2 stores manifests under sha256 digests only")
        }
        guard bytes.count <= Self.sizeLimit else {
            throw BlobError.io(
                operation: "store a manifest of \(bytes.count) bytes (over the registry's 4 MiB limit)",
                path: LinkSet.manifestRevisions.path(repository, digest).value, errno: EFBIG)
        }
        guard Digester.digest(of: bytes) == digest else {
            throw BlobError.invalidDigest(digest, reason: "content does not match digest")
        }
        let mediaType: String
        do {
            mediaType = try ManifestContent.servedMediaType(of: bytes)
        } catch {
            logger.warning("storing a manifest registry 2.8.2 cannot serve",
                metadata: ["repository": "\(repository)", "digest": "\(digest)", "reason": "\(error)"])
            mediaType = Descriptor.octetStream
        }
        let stored = try global.put(mediaType: mediaType, bytes)
        try driverCall { () throws(StorageDriverError) in try driver.putContent(LinkSet.manifestRevisions.path(repository, digest), Array(digest.description.utf8)) }
        try driverCall { () throws(StorageDriverError) in try driver.createDirectory(PathMapper.path(.layers(repository))) }
        return Descriptor(digest: stored.digest, size: stored.size, mediaType: mediaType)
    }

    /// The first link set that links `digest`, and the digest its link holds.
    private func findLink(_ digest: Digest) throws(BlobError) -> (target: Digest, linkSet: LinkSet) {
        for linkSet in Self.lookupLinkSets {
            guard let target = try LinkedBlobStatter.readLink(of: digest, in: linkSet, of: repository, driver: driver) else { continue }
            try LinkedBlobStatter.checkTarget(target, of: digest, at: linkSet.path(repository, digest))
            return (target, linkSet)
        }
        throw BlobError.unknown(digest)
    }

    private func statData(_ target: Digest) -> Result<BlobDataFile, BlobError> {
        Result(catching: { () throws(BlobError) in try global.dataFile(target) })
    }

    private func file(_ digest: Digest, _ data: BlobDataFile, linkSet: LinkSet) -> ManifestFile {
        ManifestFile(digest: digest, size: data.descriptor.size, modified: data.modified, linkSet: linkSet)
    }
}
