/// Whether Redis may be tried now. A failure (a timeout, a refused or broken connection) marks it
/// down for `retryInterval`: meanwhile calls fail at once without touching the network, so a
/// dead, stopped or silent Redis costs a lookup nothing and the filesystem reads from storage at
/// full speed. Once the interval has passed, one call (the probe) tries again while the others
/// go on failing at once; its success makes Redis healthy, its failure marks it down again.
/// A plain value: the pool keeps it in its Mutex-guarded state and passes the clock in.
struct RedisHealth: Sendable {
    /// What a caller may do.
    enum Permission: Equatable {
        /// Use Redis. `probe`: this caller is the one trying again after a failure, and the
        /// outcome it reports decides whether Redis is back.
        case go(probe: Bool)
        /// Fail at once, without network: Redis failed recently.
        case skip(lastFailure: String)
    }

    private(set) var lastFailure: String?
    /// Monotonic nanoseconds before which nobody tries Redis.
    private(set) var downUntil: UInt64 = 0
    private var probing = false

    var isDown: Bool { lastFailure != nil }

    mutating func permission(now: UInt64) -> Permission {
        guard let lastFailure else { return .go(probe: false) }
        if now < downUntil || probing { return .skip(lastFailure: lastFailure) }
        probing = true
        return .go(probe: true)
    }

    /// Redis answered (with data or with an error reply). Only a probe's answer brings it back:
    /// a command that began before the failure and ended after it says nothing new.
    mutating func answered(probe: Bool) {
        guard probe else { return }
        lastFailure = nil
        downUntil = 0
        probing = false
    }

    /// Redis failed: down from `now` for `retryInterval` seconds.
    mutating func failed(_ failure: String, now: UInt64, retryInterval: Double) {
        lastFailure = failure
        downUntil = RedisDeadline(retryInterval, after: now).nanoseconds
        probing = false
    }
}
