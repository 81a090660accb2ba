@testable import BlobCacheRedis
import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A deadline per command, not per read, and a failure marks Redis down (docs/hostile-input.md, F1, F8): against
/// scripted fake servers (a reply that trickles, a server that never answers) and a SIGSTOPped
/// redis-server. Times are only checked as upper bounds, to catch a hang; how often the network
/// was touched is counted (connections the fake accepted, the provider's statistics).
@Suite struct RedisDeadlineTests {
    /// Far above the 0.5 s timeouts: a call slower than this is stuck, not slow.
    static let stuck = 2.0

    static func configuration(_ address: String, retryInterval: Double) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(address: address)
        configuration.retryInterval = retryInterval
        return configuration
    }

    /// Runs `body`, which must throw a RedisError, within `stuck` seconds; the error.
    static func failure(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> RedisError? {
        let start = Date()
        var caught: RedisError?
        do {
            try body()
            Issue.record("succeeded against a broken Redis", sourceLocation: sourceLocation)
        } catch let error as RedisError {
            caught = error
        } catch {
            Issue.record("not a RedisError: \(error)", sourceLocation: sourceLocation)
        }
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed < stuck, "took \(elapsed) s: \(caught.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
        return caught
    }

    @Test func aTricklingReplyTimesOutAndLaterCallsFailWithoutNetwork() throws {
        let fake = try FakeRedisServer(.trickle(interval: 0.4))
        defer { fake.stop() }
        let provider = RedisCacheProvider(configuration: try Self.configuration(fake.address, retryInterval: 60))
        let d = Digester.digest(of: [1])

        let first = Self.failure { _ = try provider.stat(d) }
        guard case .timedOut(_, "HMGET", _)? = first else {
            Issue.record("expected a timeout of HMGET, got \(String(describing: first))")
            return
        }
        #expect(fake.counters.connections == 1)
        for _ in 0..<5 {
            let skipped = Self.failure { _ = try provider.stat(d) }
            guard case .markedDown? = skipped else {
                Issue.record("expected Redis marked down, got \(String(describing: skipped))")
                return
            }
        }
        #expect(fake.counters.connections == 1, "calls while Redis is marked down must not touch the network")
        #expect(fake.counters.requests == 1)
        #expect(provider.statistics == RedisStatistics(connects: 1, roundTrips: 1, failures: 1, skipped: 5))
    }

    @Test func aSilentServerTimesOutEveryKindOfCallAndNoConnectionIsReused() throws {
        let fake = try FakeRedisServer(.silent)
        defer { fake.stop() }
        // No retry interval: every call goes to the server and must time out on its own.
        let provider = RedisCacheProvider(configuration: try Self.configuration(fake.address, retryInterval: 0))
        let d = Digester.digest(of: [2])
        let scoped = try provider.repositoryScoped(RepositoryName("team/app"))
        let calls: [(String, () throws -> Void)] = [
            ("stat", { _ = try provider.stat(d) }),
            ("scoped stat", { _ = try scoped.stat(d) }),
            ("setDescriptor", { try provider.setDescriptor(d, Descriptor(digest: d, size: 1)) }),
            ("scoped setDescriptor", { try scoped.setDescriptor(d, Descriptor(digest: d, size: 1)) }),
            ("clear", { try provider.clear(d) }),
            ("scoped clear (MULTI/EXEC)", { try scoped.clear(d) }),
        ]
        for (index, (name, call)) in calls.enumerated() {
            let error = Self.failure(call)
            guard case .timedOut? = error else {
                Issue.record("\(name): expected a timeout, got \(String(describing: error))")
                continue
            }
            // A connection that timed out may be out of step: the next call connects anew.
            #expect(fake.counters.connections == index + 1, "\(name)")
        }
        #expect(provider.statistics.failures == calls.count)
        #expect(provider.statistics.skipped == 0)
    }

    @Test func aSilentServerBoundsTheConnectWithAuthAndSelect() throws {
        let fake = try FakeRedisServer(.silent)
        defer { fake.stop() }
        var configuration = try Self.configuration(fake.address, retryInterval: 60)
        configuration.password = "secret"
        configuration.database = 3
        let provider = RedisCacheProvider(configuration: configuration)
        let error = Self.failure { _ = try provider.stat(Digester.digest(of: [3])) }
        guard case .timedOut(_, "connect", _)? = error else {
            Issue.record("expected the connect (AUTH, SELECT) to time out, got \(String(describing: error))")
            return
        }
        #expect(!error!.description.contains("secret"), "the password stays out of messages: \(error!)")
        #expect(provider.statistics == RedisStatistics(connects: 1, roundTrips: 1, failures: 1, skipped: 0))
    }

    @Test func afterTheRetryIntervalOneCallTriesAgain() throws {
        let fake = try FakeRedisServer(.silent)
        defer { fake.stop() }
        let provider = RedisCacheProvider(configuration: try Self.configuration(fake.address, retryInterval: 0.2))
        let d = Digester.digest(of: [4])
        _ = Self.failure { _ = try provider.stat(d) }
        #expect(fake.counters.connections == 1)
        // Calls fail at once until the interval has passed; then one goes to the server again.
        let deadline = Date().addingTimeInterval(10)
        while fake.counters.connections < 2 && Date() < deadline {
            _ = Self.failure { _ = try provider.stat(d) }
        }
        #expect(fake.counters.connections == 2, "Redis was never tried again")
        #expect(provider.statistics.failures == 2)
    }

    @Test func aStoppedRedisServerCostsOneTimeoutThenNothing() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let provider = RedisCacheProvider(configuration: try Self.configuration(redis.address, retryInterval: 60))
        let d = Digester.digest(of: [5])
        try provider.setDescriptor(d, Descriptor(digest: d, size: 1))
        #expect(try provider.stat(d).size == 1)

        redis.signal(SIGSTOP)
        defer { redis.signal(SIGCONT) }
        let first = Self.failure { _ = try provider.stat(d) }
        guard case .timedOut? = first else {
            Issue.record("expected a timeout, got \(String(describing: first))")
            return
        }
        for _ in 0..<8 {
            let skipped = Self.failure { _ = try provider.stat(d) }
            guard case .markedDown? = skipped else {
                Issue.record("expected Redis marked down, got \(String(describing: skipped))")
                return
            }
        }
        #expect(provider.statistics == RedisStatistics(connects: 1, roundTrips: 3, failures: 1, skipped: 8))
    }

    @Test func anErrorReplyIsNotAFailureOfRedis() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let provider = RedisCacheProvider(configuration: try Self.configuration(redis.address, retryInterval: 60))
        let d = Digester.digest(of: [6])
        try redis.cli("SET", "blobs::\(d)", "not a hash")
        for _ in 0..<3 {
            #expect(throws: RedisError.reply(command: "HMGET", message: "WRONGTYPE Operation against a key holding the wrong kind of value")) {
                try provider.stat(d)
            }
        }
        // The connection stayed in step and was reused; Redis was never marked down.
        #expect(provider.statistics == RedisStatistics(connects: 1, roundTrips: 3, failures: 0, skipped: 0))
    }

    @Test func idleConnectionsAreDroppedWhenRedisIsMarkedDown() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let pool = RedisConnectionPool(configuration: try Self.configuration(redis.address, retryInterval: 0))
        // Two connections at once (one borrowed inside the other), both idle afterwards.
        try pool.withConnection { outer throws(RedisError) in
            try pool.withConnection { inner throws(RedisError) in _ = try inner.command(["PING"]) }
            _ = try outer.command(["PING"])
        }
        #expect(pool.statistics.connects == 2)

        redis.signal(SIGSTOP)
        let stopped = Self.failure { try pool.withConnection { connection throws(RedisError) in _ = try connection.command(["PING"]) } }
        redis.signal(SIGCONT)
        guard case .timedOut? = stopped else {
            Issue.record("expected a timeout, got \(String(describing: stopped))")
            return
        }
        // The other idle connection went with the failure: the next call connects anew.
        try pool.withConnection { connection throws(RedisError) in _ = try connection.command(["PING"]) }
        #expect(pool.statistics == RedisStatistics(connects: 3, roundTrips: 4, failures: 1, skipped: 0))
    }
}

/// The down mark on its own, with a clock the test moves.
@Suite struct RedisHealthTests {
    static let second: UInt64 = 1_000_000_000

    @Test func aFailureSkipsCallsForTheIntervalThenLetsOneProbeThrough() {
        var health = RedisHealth()
        #expect(health.permission(now: 0) == .go(probe: false))
        health.failed("timed out", now: 10 * Self.second, retryInterval: 1)
        #expect(health.permission(now: 10 * Self.second) == .skip(lastFailure: "timed out"))
        #expect(health.permission(now: 11 * Self.second - 1) == .skip(lastFailure: "timed out"))
        #expect(health.permission(now: 11 * Self.second) == .go(probe: true))
        // Only one probe at a time; the others still fail at once.
        #expect(health.permission(now: 11 * Self.second) == .skip(lastFailure: "timed out"))
        health.answered(probe: true)
        #expect(!health.isDown)
        #expect(health.permission(now: 11 * Self.second) == .go(probe: false))
    }

    @Test func aFailedProbeMarksRedisDownAgain() {
        var health = RedisHealth()
        health.failed("refused", now: 0, retryInterval: 1)
        #expect(health.permission(now: Self.second) == .go(probe: true))
        health.failed("timed out", now: 2 * Self.second, retryInterval: 1)
        #expect(health.permission(now: 2 * Self.second + 1) == .skip(lastFailure: "timed out"))
        #expect(health.permission(now: 3 * Self.second) == .go(probe: true))
    }

    @Test func anAnswerToACommandFromBeforeTheFailureDoesNotBringRedisBack() {
        var health = RedisHealth()
        health.failed("timed out", now: 0, retryInterval: 1)
        health.answered(probe: false)
        #expect(health.permission(now: 1) == .skip(lastFailure: "timed out"))
    }

    @Test func oddIntervalsAreSafe() {
        var health = RedisHealth()
        health.failed("x", now: 5, retryInterval: .nan)
        #expect(health.permission(now: 5) == .go(probe: true))
        health.failed("x", now: 5, retryInterval: .infinity)
        #expect(health.permission(now: UInt64.max - 1) == .skip(lastFailure: "x"))
        health.failed("x", now: 5, retryInterval: -3)
        #expect(health.permission(now: 5) == .go(probe: true))
    }
}
