import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// Mounts whose Redis is slow, silent or stopped (docs/hostile-input.md, F1, F8): lookups fall back to storage
/// within a bound, one slow lookup does not hold up the others, SIGTERM still stops the daemon,
/// and after one timeout Redis is left alone. Times are upper bounds only (a hang detector);
/// network use is counted (the fake server's counters, the daemon's log lines).
@Suite struct RedisDeadlineMountTests {
    /// Far above the 0.5 s Redis timeouts: a command slower than this is stuck, not slow.
    static let stuck = 5.0
    /// Every stat reaches the daemon, so every stat consults the cache.
    static let noKernelCache = ["--blob-timeout", "0", "--dir-timeout", "0", "--negative-timeout", "0"]

    @Test func aTricklingRedisFallsBackToStorage() throws {
        let workspace = try Workspace("redis-trickle")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("library/alpine", seededBytes(count: 300_000, seed: 41))])[0]
        let fake = try FakeRedisServer(.trickle(interval: 0.4))
        defer { fake.stop() }
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--redis", fake.address]) { mount in
            let start = Date()
            let stat = Posix.stat(mount.path(blob.relativePath))
            #expect(try stat.get().st_size == blob.bytes.count)
            let sum = try Command.run("sha256sum", [mount.path(blob.relativePath)], timeout: 30)
            #expect(sum.status == 0, "\(sum)")
            #expect(sum.stdoutText.hasPrefix(blob.digest.hex), "\(sum)")
            let elapsed = Date().timeIntervalSince(start)
            #expect(elapsed < Self.stuck, "stat and sha256sum took \(elapsed) s\n\(mount.log.tail(2000))")
            #expect(fake.counters.requests >= 1, "the lookup never asked the fake Redis")
        }
    }

    @Test func tenParallelLookupsDoNotQueueBehindATricklingRedis() throws {
        let workspace = try Workspace("redis-parallel")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("library/alpine", seededBytes(count: 1000, seed: 42))])
        let fake = try FakeRedisServer(.trickle(interval: 0.4))
        defer { fake.stop() }
        let options = ["--redis", fake.address] + Self.noKernelCache
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let start = Date()
            let results = try Self.parallelStats(of: Self.absentNames(10).map { mount.path("repo/library/alpine/blobs/\($0)") })
            let elapsed = Date().timeIntervalSince(start)
            for result in results {
                #expect(result.status == 1 && result.stderrText.contains("No such file"), "\(result)")
            }
            // Whether the kernel lets them through together or one by one (libfuse < 3.17), the
            // first timeout marks Redis down and the others read storage at once; ten that each
            // paid the 0.5 s timeout would take 5 s (the forever of a trickle before deadlines).
            #expect(elapsed < 4, "ten parallel lookups took \(elapsed) s\n\(mount.log.tail(2000))")
        }
    }

    /// Lookups in one directory reach the daemon together (FUSE_PARALLEL_DIROPS): a slow cache
    /// answer for one name does not hold up the next. The fake answers each request as a miss
    /// after 0.3 s and records how many waited at once; serialised lookups would never overlap.
    @Test func lookupsInOneDirectoryReachRedisTogether() throws {
        let workspace = try Workspace("redis-dirops")
        defer { workspace.remove() }
        // Names the repository links: only those reach the cache (membership comes from links).
        let blobs = try writeStore(root: workspace.root, (0..<10).map { ("library/alpine", seededBytes(count: 1000 + $0, seed: UInt64(43 + $0))) })
        let fake = try FakeRedisServer(.misses(delay: 0.3))
        defer { fake.stop() }
        let options = ["--redis", fake.address] + Self.noKernelCache
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let results = try Self.parallelStats(of: blobs.map { mount.path($0.relativePath) })
            for result in results {
                #expect(result.status == 0, "\(result)")
            }
            #expect(fake.counters.requests >= 10)
            let overlap = { #expect(fake.counters.maximumPending > 1, "lookups in one directory were serialised: \(fake.counters)") }
            if Self.libfuseVersion < 317 {
                withKnownIssue("libfuse \(Self.libfuseVersion) never passes FUSE_PARALLEL_DIROPS on to the kernel (libfuse#861)") {
                    overlap()
                }
            } else {
                overlap()
            }
        }
    }

    @Test func sigtermStopsTheDaemonWhileALookupWaitsOnRedis() throws {
        let workspace = try Workspace("redis-sigterm")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("library/alpine", seededBytes(count: 5000, seed: 44))])[0]
        let fake = try FakeRedisServer(.trickle(interval: 0.4))
        defer { fake.stop() }
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--redis", fake.address])
        defer { mount.stop() }
        let waiting = try Command.start("stat", [mount.path(blob.relativePath)])
        #expect(fake.wait(timeout: 20) { $0.requests >= 1 }, "the lookup never reached the fake Redis\n\(mount.log.tail(2000))")

        let stopped = mount.stop(timeout: 20)
        #expect(stopped.isClean, "SIGTERM while a lookup waited on Redis: \(stopped)\n\(mount.log.tail(3000))")
        // The lookup ended too: with the blob (from storage), or ENOTCONN or ECONNABORTED from
        // the unmount, but it ended.
        let result = try waiting.wait(timeout: 20)
        let ended = ["not connected", "connection abort"].contains { result.stderrText.contains($0) }
        #expect(result.status == 0 || ended, "\(result)")
    }

    @Test func aStoppedRedisServerIsPaidOnceThenLookupsReadStorage() throws {
        let workspace = try Workspace("redis-sigstop")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, (0..<12).map { ("cached/repo", seededBytes(count: 20_000 + $0, seed: UInt64(45 + $0))) })
        let redis = try RedisServer()
        defer { redis.stop() }
        // A retry interval far longer than the test: every lookup after the first timeout must be
        // skipped, which the daemon's log counts exactly.
        let options = ["--redis", redis.address, "--redis-retry-interval", "600"] + Self.noKernelCache
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            expectSameBytes(try Posix.readFile(mount.path(blobs[0].relativePath)), blobs[0].bytes)
            // The global descriptor is what a lookup reads and writes back (membership comes from links).
            #expect(try redis.cli("--raw", "HGET", "blobs::\(blobs[0].digest)", "size") == "\(blobs[0].bytes.count)")

            redis.signal(SIGSTOP)
            defer { redis.signal(SIGCONT) }
            let start = Date()
            let absent = Self.absentNames(4).map { "repo/cached/repo/blobs/\($0)" }
            // Each blob not looked up yet asks the cache once; names held and absent names do not.
            for path in blobs.dropFirst().map(\.relativePath) + absent + blobs.map(\.relativePath) {
                let stat = Posix.stat(mount.path(path))
                if path.hasPrefix("repo/cached/repo/blobs/"), let blob = blobs.first(where: { $0.relativePath == path }) {
                    #expect(try stat.get().st_size == blob.bytes.count, "\(path)")
                } else {
                    #expect(stat.map { _ in 0 } == .failure(.ENOENT), "\(path)")
                }
            }
            expectSameBytes(try Posix.readFile(mount.path(blobs[2].relativePath)), blobs[2].bytes, "with Redis stopped")
            let elapsed = Date().timeIntervalSince(start)
            #expect(elapsed < Self.stuck, "ten lookups with Redis stopped took \(elapsed) s")

            let log = mount.log
            // A skipped call's message names the failure that marked Redis down: count each once.
            let skipped = Self.lines(of: log, containing: "skipped after a recent failure")
            let timeouts = Self.lines(of: log, containing: "did not finish") - skipped
            #expect(timeouts == 1, "Redis timed out \(timeouts) times, not once\n\(log.tail(3000))")
            #expect(skipped >= 9, "only \(skipped) lookups skipped Redis\n\(log.tail(3000))")
        }
    }

    // MARK: - Helpers

    /// fuse_version() of the libfuse this process (like the daemon) links: 314 for 3.14.
    static var libfuseVersion: Int32 {
        typealias Version = @convention(c) () -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fuse_version") else { return 0 }
        return unsafeBitCast(symbol, to: Version.self)()
    }

    /// `count` well-formed digests that no store holds.
    static func absentNames(_ count: Int) -> [String] {
        (0..<count).map { "sha256:" + String(repeating: String(format: "%02x", 0xa0 + $0), count: 32) }
    }

    /// Runs `stat` on every path at once, each its own process, and waits for all of them.
    static func parallelStats(of paths: [String]) throws -> [CommandResult] {
        let running = try paths.map { try Command.start("stat", [$0]) }
        return try running.map { try $0.wait(timeout: 60) }
    }

    static func lines(of log: String, containing text: String) -> Int {
        log.split(separator: "\n").filter { $0.contains(text) }.count
    }
}
