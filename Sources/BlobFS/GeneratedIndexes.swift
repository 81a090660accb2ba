import Distribution
import Glibc
import Synchronization

/// The index.json each repository's OCI layout showed last, with the time it was generated: the
/// lookup that sizes the file and the open right after it share one generation (the size the
/// kernel was told is the size read), and a tag move shows once `lifetime` (the tags' timeout)
/// has passed. One entry per repository, dropped once older than `lifetime` whenever another is
/// kept, and never more than `limit`.
final class GeneratedIndexes: Sendable {
    static let limit = 64

    private let kept = Mutex<[RepositoryName: (bytes: [UInt8], generatedAt: Double)]>([:])
    /// How long a generation stands, in seconds.
    let lifetime: Double

    init(lifetime: Double) {
        self.lifetime = lifetime
    }

    /// The bytes generated for `repository` less than `lifetime` ago, if any.
    func recent(_ repository: RepositoryName) -> [UInt8]? {
        let now = Self.now()
        return kept.withLock { kept in
            guard let entry = kept[repository], now - entry.generatedAt < lifetime else { return nil }
            return entry.bytes
        }
    }

    /// Keeps `bytes`, generated for `repository` just now (the generation itself runs outside
    /// this lock: two concurrent ones each keep a right answer).
    func keep(_ bytes: [UInt8], for repository: RepositoryName) {
        guard lifetime > 0 else { return }
        let now = Self.now()
        kept.withLock { kept in
            kept = kept.filter { now - $0.value.generatedAt < lifetime }
            if kept.count >= Self.limit, let oldest = kept.min(by: { $0.value.generatedAt < $1.value.generatedAt }) {
                kept[oldest.key] = nil
            }
            kept[repository] = (bytes, now)
        }
    }

    var count: Int { kept.withLock { $0.count } }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
