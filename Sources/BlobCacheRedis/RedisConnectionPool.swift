import Glibc
import Synchronization

/// Connections shared by libfuse's worker threads: each call borrows one, and returns it unless
/// it failed. A failed connect marks Redis down for `retryInterval`; after that the next call
/// tries again, so the cache comes back by itself when Redis does.
final class RedisConnectionPool: Sendable {
    let configuration: RedisConfiguration
    private let idle = Mutex<[RedisConnection]>([])
    /// Monotonic nanoseconds before which no connect is attempted.
    private let downUntil = Atomic<UInt64>(0)

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    func withConnection<T>(_ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        let connection = try borrow()
        do {
            let result = try body(connection)
            giveBack(connection)
            return result
        } catch {
            // A reply error leaves the connection usable; anything else may have desynchronised it.
            if case .reply = error { giveBack(connection) }
            throw error
        }
    }

    private func borrow() throws(RedisError) -> RedisConnection {
        if let connection = idle.withLock({ $0.popLast() }) { return connection }
        let now = Self.monotonicNanoseconds()
        guard now >= downUntil.load(ordering: .relaxed) else {
            throw .unavailable(address: configuration.address, reason: "marked down after a failed connection")
        }
        do {
            return try RedisConnection(configuration)
        } catch {
            downUntil.store(now + UInt64(configuration.retryInterval * 1e9), ordering: .relaxed)
            throw error
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        idle.withLock { idle in
            if idle.count < configuration.maximumIdleConnections { idle.append(connection) }
        }
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
