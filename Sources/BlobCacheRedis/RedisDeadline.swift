import Glibc

/// A point on the monotonic clock by which an exchange with Redis must be over. A whole command
/// (its write and every reply of its pipeline) gets one, and every wait inside it gets only what
/// is left: a server that trickles its reply a byte at a time still runs out of time.
struct RedisDeadline: Sendable, Comparable {
    /// CLOCK_MONOTONIC nanoseconds: wall-clock jumps neither stretch nor cut a deadline.
    let nanoseconds: UInt64

    init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// `seconds` after `start` (by default now), saturating: a configuration value is never
    /// trusted to be small, finite or positive (negative and NaN count as 0).
    init(_ seconds: Double, after start: UInt64 = RedisDeadline.now) {
        let nanoseconds = seconds * 1e9
        if !(nanoseconds > 0) {
            self.init(nanoseconds: start)
        } else if nanoseconds >= Double(UInt64.max - start) {
            self.init(nanoseconds: UInt64.max)
        } else {
            self.init(nanoseconds: start + UInt64(nanoseconds))
        }
    }

    var hasPassed: Bool { Self.now >= nanoseconds }

    /// Milliseconds left, rounded up so that a wait never ends just before the deadline and
    /// spins; nil once it has passed.
    var remainingMilliseconds: Int32? {
        let now = Self.now
        guard now < nanoseconds else { return nil }
        let milliseconds = (nanoseconds - now + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }

    static func < (a: RedisDeadline, b: RedisDeadline) -> Bool { a.nanoseconds < b.nanoseconds }

    /// The monotonic clock now, in nanoseconds.
    static var now: UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
