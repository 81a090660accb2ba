/// A Redis failure. Cache errors never fail a read: `CachedBlobStatter` falls back to storage.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No connection: refused, dropped, closed by the server, or a reply that is not RESP.
    case unavailable(address: String, reason: String)
    /// A command (its write and all its replies) or a connect (with AUTH and SELECT) did not
    /// finish within its time.
    case timedOut(address: String, operation: String, seconds: Double)
    /// Not tried: Redis failed recently and is left alone until `retryInterval` has passed.
    case markedDown(address: String, lastFailure: String)
    /// Redis answered with an error (`-ERR …`, `WRONGTYPE …`).
    case reply(command: String, message: String)
    /// A value in Redis that is not what the key schema says it holds.
    case corruptEntry(key: String, reason: String)

    /// Whether this failure says Redis itself is unwell (so calls should stop trying it for a
    /// while), rather than that one command or one entry was wrong.
    var marksRedisDown: Bool {
        switch self {
        case .unavailable, .timedOut: true
        case .markedDown, .reply, .corruptEntry: false
        }
    }

    public var description: String {
        switch self {
        case .unavailable(let address, let reason): "redis \(address) unavailable: \(reason)"
        case .timedOut(let address, let operation, let seconds): "redis \(address) did not finish \(operation) within \(seconds) s"
        case .markedDown(let address, let lastFailure): "redis \(address) skipped after a recent failure (\(lastFailure))"
        case .reply(let command, let message): "redis \(command): \(message)"
        case .corruptEntry(let key, let reason): "redis key \(key) is corrupt: \(reason)"
        }
    }
}
