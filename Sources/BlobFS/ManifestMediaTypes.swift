import Distribution
import Glibc
import Storage
import Synchronization

/// The media types a repository's manifests give its blobs (a config's, a layer's), for
/// `user.blobfs.mediatype`: the registry's own descriptor cache only ever records
/// `application/octet-stream` for a blob pushed without a type, while its manifests say what it
/// is. Read from every revision of the repository when first asked, and kept for the blob
/// timeout; a blob no manifest names keeps the descriptor's type.
final class ManifestMediaTypes: Sendable {
    private struct Known {
        var types: [Digest: String]
        var readAt: Double
    }

    private let registry: Registry
    private let lifetime: Double
    /// Per repository. Built outside the lock (two first askers may both read the manifests,
    /// and the last one stored is kept).
    private let known = Mutex<[RepositoryName: Known]>([:])

    init(registry: Registry, lifetime: Double) {
        self.registry = registry
        self.lifetime = lifetime
    }

    /// The type a manifest of `repository` gives `blob`; nil when none names it.
    func type(of blob: Digest, in repository: RepositoryName) -> String? {
        let now = Self.now()
        if let cached = known.withLock({ $0[repository] }), now - cached.readAt < lifetime { return cached.types[blob] }
        let types = read(repository)
        known.withLock { $0[repository] = Known(types: types, readAt: now) }
        return types[blob]
    }

    private func read(_ name: RepositoryName) -> [Digest: String] {
        guard let repository = try? registry.repository(name), let revisions = try? repository.manifests.revisions() else { return [:] }
        var types: [Digest: String] = [:]
        for revision in revisions {
            guard let bytes = try? repository.manifests.get(revision.digest), let references = try? ManifestContent.references(of: bytes) else {
                continue
            }
            for reference in references where reference.role != .manifest && !reference.mediaType.isEmpty {
                types[reference.digest] = types[reference.digest] ?? reference.mediaType
            }
        }
        return types
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
