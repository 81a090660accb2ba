import Instrumentation
import Synchronization

/// Connections shared by libfuse's worker threads: each call borrows one, and returns it unless
/// it failed. A timeout or a connection failure marks Redis down (`RedisHealth`) and drops the
/// idle connections; after `retryInterval` one call tries again, so the cache comes back by
/// itself when Redis does. The lock guards only the lists and the mark: it is never held
/// across network I/O, which has a deadline of its own (`RedisConnection`).
final class RedisConnectionPool: Sendable {
    let configuration: RedisConfiguration

    private struct State {
        var idle: [RedisConnection] = []
        var health = RedisHealth()
        var statistics = RedisStatistics()
    }

    private let state = Mutex(State())

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    var statistics: RedisStatistics { state.withLock { $0.statistics } }

    var isMarkedDown: Bool { state.withLock { $0.health.isDown } }

    func withConnection<T>(_ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        let (connection, probe) = try borrow()
        let result: T
        do {
            result = try body(connection)
        } catch {
            if error.marksRedisDown {
                markDown(error)
            } else {
                // Redis answered (every path must settle a probe, or Redis is never tried again).
                state.withLock { $0.health.answered(probe: probe) }
                // After an error reply the connection is still in step with Redis.
                if case .reply = error { giveBack(connection) }
            }
            throw error
        }
        state.withLock { $0.health.answered(probe: probe) }
        giveBack(connection)
        return result
    }

    /// An idle connection or a new one; fails at once while Redis is marked down.
    private func borrow() throws(RedisError) -> (RedisConnection, probe: Bool) {
        let now = RedisDeadline.now
        let decision = state.withLock { state -> Result<(RedisConnection?, probe: Bool), RedisError> in
            switch state.health.permission(now: now) {
            case .skip(let lastFailure):
                state.statistics.skipped += 1
                return .failure(.markedDown(address: configuration.address, lastFailure: lastFailure))
            case .go(let probe):
                state.statistics.roundTrips += 1
                let idle = state.idle.popLast()
                if idle == nil { state.statistics.connects += 1 }
                return .success((idle, probe))
            }
        }
        let (idle, probe) = try decision.get()
        if let idle { return (idle, probe) }
        do {
            return (try RedisConnection(configuration), probe)
        } catch {
            markDown(error)
            throw error
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        // A connection given back while Redis is marked down is dropped with the others; it is
        // released after the lock (closing a socket is quick, but nobody waits on it).
        let unwanted: RedisConnection? = state.withLock { state in
            guard !state.health.isDown, state.idle.count < configuration.maximumIdleConnections else { return connection }
            state.idle.append(connection)
            return nil
        }
        _ = unwanted
    }

    /// Marks Redis down and drops the idle connections: they are likely as stuck as the one that
    /// failed, and each would cost a full timeout to find out.
    private func markDown(_ error: RedisError) {
        let now = RedisDeadline.now
        let dropped = state.withLock { state in
            state.statistics.failures += 1
            BlobfsMetrics.current?.redisErrors.increment()
            state.health.failed(error.description, now: now, retryInterval: configuration.retryInterval)
            defer { state.idle.removeAll() }
            return state.idle
        }
        _ = dropped  // closed here, after the lock
    }
}
