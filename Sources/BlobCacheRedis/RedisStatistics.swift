/// What a Redis cache has done, for logs and tests: how often it touched the network and how
/// often Redis being down spared it that.
public struct RedisStatistics: Sendable, Hashable {
    /// Connections attempted (each one a TCP connect, with AUTH and SELECT when configured).
    public var connects = 0
    /// Calls let through to Redis (a command or a pipeline each: one round trip, after a
    /// connect when no idle connection was left).
    public var roundTrips = 0
    /// Timeouts and connection failures; each marked Redis down for `retryInterval`.
    public var failures = 0
    /// Calls that failed at once, without network, because Redis was marked down.
    public var skipped = 0

    public init(connects: Int = 0, roundTrips: Int = 0, failures: Int = 0, skipped: Int = 0) {
        (self.connects, self.roundTrips, self.failures, self.skipped) = (connects, roundTrips, failures, skipped)
    }
}
