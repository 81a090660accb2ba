/// A Redis failure. Cache errors never fail a read: `CachedBlobStatter` falls back to storage.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No connection: refused, timed out, dropped, or Redis marked down after a recent failure.
    case unavailable(address: String, reason: String)
    /// Redis answered with an error (`-ERR …`, `WRONGTYPE …`).
    case reply(command: String, message: String)
    /// A value in Redis that is not what the key schema says it holds.
    case corruptEntry(key: String, reason: String)

    public var description: String {
        switch self {
        case .unavailable(let address, let reason): "redis \(address) unavailable: \(reason)"
        case .reply(let command, let message): "redis \(command): \(message)"
        case .corruptEntry(let key, let reason): "redis key \(key) is corrupt: \(reason)"
        }
    }
}
