/// Where Redis is and how long to wait for it.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var database: Int = 0
    public var password: String?
    /// Seconds for a connection, in all: the TCP connect, AUTH and SELECT.
    public var connectTimeout: Double = 0.5
    /// Seconds for a command, in all: its write and every reply (of a pipeline: all of them).
    /// A deadline for the whole exchange, not for each read: a trickling reply still times out.
    public var ioTimeout: Double = 0.5
    /// Idle connections kept for reuse.
    public var maximumIdleConnections = 16
    /// After a timeout or a failed connection, seconds during which calls fail at once instead of
    /// trying again: a dead, stopped or silent Redis must not slow every read down by a timeout.
    public var retryInterval: Double = 1

    /// Parses `host:port` (a missing port is 6379; `[v6]:port` works).
    public init(address: String) throws(RedisError) {
        var host = address
        var port = 6379
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            host = String(address[address.index(after: address.startIndex)..<close])
            let rest = address[address.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let p = Int(rest.dropFirst()) else { throw .unavailable(address: address, reason: "invalid port") }
                port = p
            }
        } else if let colon = address.lastIndex(of: ":") {
            host = String(address[..<colon])
            guard let p = Int(address[address.index(after: colon)...]) else {
                throw .unavailable(address: address, reason: "invalid port")
            }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw .unavailable(address: address, reason: "invalid address") }
        self.host = host
        self.port = port
    }

    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
