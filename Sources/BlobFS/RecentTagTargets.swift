import Distribution
import Glibc
import Synchronization

/// The manifests tags named when a lookup or a listing last read them, for the tags' timeout
/// (the directories' one second): `ls -l tags/` lists the tags and then reads every link, and
/// each readlink would otherwise read the tag's `current/link` again. A tag that moves is seen
/// within the same time as the kernel's own cached entry for it.
final class RecentTagTargets: Sendable {
    private struct State {
        var targets: [TagName: (manifest: Digest, readAt: Double)] = [:]
    }

    private let state = Mutex(State())
    /// How long a target read stands, in seconds.
    let lifetime: Double

    init(lifetime: Double) {
        self.lifetime = lifetime
    }

    func remember(_ manifest: Digest, for tag: TagName) {
        let now = Self.now()
        state.withLock { state in
            // Bounded by the tags the kernel asks about within a lifetime: drop the old ones
            // now and then, not on every call.
            if state.targets.count >= 4096 { state.targets = state.targets.filter { now - $0.value.readAt < lifetime } }
            state.targets[tag] = (manifest, now)
        }
    }

    /// Forgets what `tag` named: this mount untagged it.
    func forget(_ tag: TagName) {
        _ = state.withLock { $0.targets.removeValue(forKey: tag) }
    }

    /// The manifest `tag` named less than `lifetime` ago, if it was read.
    func recent(_ tag: TagName) -> Digest? {
        let now = Self.now()
        return state.withLock { state in
            guard let known = state.targets[tag], now - known.readAt < lifetime else { return nil }
            return known.manifest
        }
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
