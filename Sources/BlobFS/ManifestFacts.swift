import Distribution
import Storage
import Synchronization

/// What index.json needs to know of a manifest, by digest: its size, the media type the registry
/// serves it with, and the manifests it names. A digest's bytes never change, so neither do
/// these: they are found once per mount (one read and parse of the manifest) and kept, and a
/// repository's index.json is then made from its links alone. Whether a repository still has
/// the manifest is not a fact of the digest: the caller asks storage.
final class ManifestFacts: Sendable {
    struct Facts: Sendable {
        var size: Int
        /// Nil when registry 2.8.2 cannot serve the bytes.
        var servedMediaType: String?
        /// The manifests it names (a list's or an index's children); nil when its references
        /// cannot be read.
        var childManifests: [Digest]?
    }

    /// At most this many digests are kept (about 200 bytes each); beyond, all are dropped and
    /// found again as needed.
    static let limit = 1 << 16

    private let known = Mutex<[Digest: Facts]>([:])

    /// The facts of `digest`, kept or found now from `bytes` (read only when not kept); nil when
    /// the bytes cannot be read (not kept: a read error may pass).
    func facts(of digest: Digest, bytes: () throws(BlobError) -> [UInt8]) throws(BlobError) -> Facts {
        if let kept = known.withLock({ $0[digest] }) { return kept }
        let content = try bytes()
        let read = try? ManifestContent.servedMediaTypeAndReferences(of: content)
        let facts = Facts(
            size: content.count, servedMediaType: read?.servedMediaType,
            childManifests: (try? read?.references.get()).map { $0.filter { $0.role == .manifest }.map(\.digest) })
        known.withLock { known in
            if known.count >= Self.limit { known.removeAll() }
            known[digest] = facts
        }
        return facts
    }

    /// Whether the facts of `digest` are kept.
    func has(_ digest: Digest) -> Bool { known.withLock { $0[digest] != nil } }

    var count: Int { known.withLock { $0.count } }
}
