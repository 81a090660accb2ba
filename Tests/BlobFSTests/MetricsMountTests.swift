import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// `--metrics-address`: a live mount's `GET /metrics` moves by exactly what was done to the mount
/// (reads, a corrupt blob's failed read, a committed and a refused upload, a Redis outage), the
/// exposition passes `promtool check metrics`, the server listens on exactly the address given
/// and nowhere without it, and an address that cannot be bound stops the mount before it starts.
@Suite struct MetricsMountTests {
    static func metricsOptions(_ port: Int) -> [String] { ["--metrics-address", "127.0.0.1:\(port)"] }

    @Test func readsAFailedReadAndUploadsMoveTheirCountersByExactlyWhatWasDone() throws {
        let workspace = try Workspace("metrics")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("metrics/app", seededBytes(count: (3 << 20) + 5, seed: 801)),
            ("metrics/app", seededBytes(count: (1 << 20) + 3, seed: 802)),  // one byte flipped
        ])
        let (intact, corrupted) = (blobs[0], blobs[1])
        try Posix.flipByte(in: dataPath(root: root, corrupted.canonical), at: 1000)
        let port = try freeLoopbackPort()
        let url = "http://127.0.0.1:\(port)/metrics"
        // The daemon serves every read (no passthrough), so that the bytes it serves are countable.
        let options = Self.metricsOptions(port) + ["--read-write", "--passthrough", "off"]
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: options) { mount in
            let start = try Scrape(url)
            #expect(start.value("blobfs_build_info", ["version": "0.1.0"]) == 1)

            // A whole blob read once, from a cold page cache: every byte is served exactly once,
            // and hashed exactly once at the first read.
            expectSameBytes(try Posix.readFile(mount.path(intact.relativePath)), intact.bytes)
            let afterRead = try Scrape(url)
            var moved = ScrapeDelta(before: start, after: afterRead)
            let size = Double(intact.bytes.count)
            #expect(moved["blobfs_served_bytes_total"] == size)
            #expect(moved["blobfs_hashed_bytes_total"] == size)
            #expect(moved["blobfs_blobs_verified_total"] == 1)
            #expect(moved["blobfs_verification_failures_total"] == 0)
            #expect(moved["blobfs_fuse_requests_total", ["operation": "open", "result": "ok"]] == 1)
            #expect(moved["blobfs_opens_total", ["served_by": "daemon"]] == 1)
            #expect(moved["blobfs_opens_total", ["served_by": "passthrough"]] == 0)
            #expect(moved["blobfs_fuse_requests_total", ["operation": "read", "result": "ok"]] >= 1)
            #expect(
                moved["blobfs_fuse_request_duration_seconds_count", ["operation": "read"]]
                    == moved["blobfs_fuse_requests_total", ["operation": "read", "result": "ok"]])
            // The data file was read through the driver: at least the hash's pass and the served one.
            #expect(moved["blobfs_storage_requests_total", ["operation": "read"]] >= 2)
            #expect(moved["blobfs_storage_errors_total", ["operation": "read"]] == 0)

            // The corrupt blob: its first read fails with EIO, and it counts as one failed verification.
            let (bytes, error) = Posix.readAll(mount.path(corrupted.relativePath))
            #expect(error == .EIO, "read of the corrupt blob: \(error.map(\.description) ?? "no error") after \(bytes.count) bytes")
            let afterCorrupt = try Scrape(url)
            moved = ScrapeDelta(before: afterRead, after: afterCorrupt)
            #expect(moved["blobfs_blobs_verified_total"] == 1)
            #expect(moved["blobfs_verification_failures_total"] == 1)
            #expect(moved["blobfs_hashed_bytes_total"] == Double(corrupted.bytes.count))
            #expect(moved["blobfs_fuse_requests_total", ["operation": "read", "result": "EIO"]] >= 1)
            #expect(moved["blobfs_served_bytes_total"] == 0)

            // A committed upload, then one whose bytes do not match its name (refused at its close).
            let fresh = ReadWriteMountTests.blob("metrics/app", seededBytes(count: 70_001, seed: 803))
            let committed = writeThroughSyscalls(mount.path(fresh.relativePath), fresh.bytes)
            #expect(committed.succeeded, "\(committed)")
            let wrongName = mount.path("repo/metrics/app/blobs/\(Digester.digest(of: Array("something else".utf8)))")
            let refused = writeThroughSyscalls(wrongName, seededBytes(count: 5000, seed: 804))
            #expect(refused.close == .EIO, "\(refused)")
            // The refusal is counted at the last close (release), which reaches the daemon after
            // close(2) returned: wait for the upload to be gone from the store.
            ReadWriteMountTests.expectNoUploads(root, "after the refused upload")
            let afterUploads = try Scrape(url)
            moved = ScrapeDelta(before: afterCorrupt, after: afterUploads)
            #expect(moved["blobfs_uploads_committed_total"] == 1)
            #expect(moved["blobfs_uploads_refused_total", ["reason": "digest_mismatch"]] == 1)
            #expect(moved["blobfs_uploads_cancelled_total"] == 0)
            #expect(moved["blobfs_fuse_requests_total", ["operation": "create", "result": "ok"]] == 2)
            #expect(moved["blobfs_fuse_requests_total", ["operation": "flush", "result": "EIO"]] == 1)
            #expect(afterUploads.value("blobfs_uploads_in_progress") == 0)
            #expect(moved["blobfs_storage_requests_total", ["operation": "commit"]] >= 1)
            expectCommitted(root: root, fresh)
            #expect(afterUploads.value("blobfs_inodes") >= 1)
            #expect(afterUploads.value("blobfs_open_handles") == 0)
        }
    }

    @Test func aRedisOutageCountsOneFailureAndRedisDown() throws {
        let workspace = try Workspace("metrics-redis")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, (0..<6).map { ("cached/repo", seededBytes(count: 10_000 + $0, seed: UInt64(810 + $0))) })
        let redis = try RedisServer()
        defer { redis.stop() }
        let port = try freeLoopbackPort()
        let url = "http://127.0.0.1:\(port)/metrics"
        // A long retry interval: after the first failure every lookup skips Redis, so exactly one
        // failure is counted however long the test takes.
        let options = Self.metricsOptions(port) + [
            "--redis", redis.address, "--redis-retry-interval", "600", "--blob-timeout", "0", "--dir-timeout", "0",
            "--negative-timeout", "0",
        ]
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let start = try Scrape(url)
            #expect(start.value("blobfs_redis_up") == 1)
            expectSameBytes(try Posix.readFile(mount.path(blobs[0].relativePath)), blobs[0].bytes)
            let afterRead = try Scrape(url)
            var moved = ScrapeDelta(before: start, after: afterRead)
            #expect(moved["blobfs_descriptor_cache_misses_total", ["cache": "redis"]] >= 1, "a fresh Redis knows no blob")
            #expect(moved["blobfs_redis_errors_total"] == 0)

            redis.stop()
            for blob in blobs[1...] {
                expectSameBytes(try Posix.readFile(mount.path(blob.relativePath)), blob.bytes, "with Redis down")
            }
            let afterOutage = try Scrape(url)
            moved = ScrapeDelta(before: afterRead, after: afterOutage)
            #expect(moved["blobfs_redis_errors_total"] == 1, "\(mount.log.tail(2000))")
            #expect(afterOutage.value("blobfs_redis_up") == 0)
            #expect(moved["blobfs_descriptor_cache_hits_total", ["cache": "redis"]] == 0)
            #expect(moved["blobfs_descriptor_cache_misses_total", ["cache": "memory"]] == 0, "no memory cache beside Redis")
        }
    }

    @Test func promtoolAcceptsTheExposition() throws {
        guard let promtool = try? Command.which("promtool") else {
            print("skipping promtoolAcceptsTheExposition: promtool is not installed (Debian's prometheus package)")
            return
        }
        let workspace = try Workspace("metrics-promtool")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [("lint/app", seededBytes(count: 4097, seed: 820))])
        let port = try freeLoopbackPort()
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: Self.metricsOptions(port)) { mount in
            // Some traffic first, so that the histograms and a lazily made error counter are exposed.
            expectSameBytes(try Posix.readFile(mount.path(blobs[0].relativePath)), blobs[0].bytes)
            #expect(Posix.readAll(mount.path("repo/lint/app/blobs/sha256:" + String(repeating: "0", count: 64))).error == .ENOENT)
            let scrape = try Scrape("http://127.0.0.1:\(port)/metrics")
            #expect(scrape.text.contains("# HELP blobfs_fuse_requests_total "))
            let exposition = workspace.path("exposition.txt")
            try Posix.writeFile(exposition, Array(scrape.text.utf8))
            let check = try Command.run("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, exposition], timeout: 60)
            #expect(check.status == 0, "promtool check metrics: \(check)")
        }
    }

    @Test func theServerListensOnExactlyTheAddressGivenAndNowhereWithoutIt() throws {
        let workspace = try Workspace("metrics-listen")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("listen/app", seededBytes(count: 100, seed: 830))])
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let sockets = try listeningSockets(of: mount.pid)
            #expect(sockets == [], "metrics are off by default")
        }
        let port = try freeLoopbackPort()
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: Self.metricsOptions(port)) { mount in
            let sockets = try listeningSockets(of: mount.pid)
            #expect(sockets == ["127.0.0.1:\(port)"])
            // Anything but /metrics is 404.
            let other = try Command.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "http://127.0.0.1:\(port)/"], timeout: 30)
            #expect(other.stdoutText == "404")
        }
        // IPv6, through the mount option, where the machine has a loopback address for it.
        guard (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8))?.contains("00000000000000000000000000000001") == true else {
            print("skipping the IPv6 half of theServerListensOnExactlyTheAddressGivenAndNowhereWithoutIt: no ::1 on this machine")
            return
        }
        let port6 = try freeLoopbackPort()
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["-o", "metrics_address=[::1]:\(port6)"]) { mount in
            let sockets = try listeningSockets(of: mount.pid)
            #expect(sockets == ["[::1]:\(port6)"])
            let scrape = try Scrape("http://[::1]:\(port6)/metrics")
            #expect(scrape.value("blobfs_build_info", ["version": "0.1.0"]) == 1)
        }
    }

    @Test func anAddressThatCannotBeBoundStopsTheMountBeforeItStarts() throws {
        let workspace = try Workspace("metrics-refused")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("refused/app", seededBytes(count: 100, seed: 840))])
        // A port some other socket listens on.
        let busy = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(busy) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(busy, $0, length) == 0 && listen(busy, 1) == 0 && getsockname(busy, $0, &length) == 0 }
        }
        try #require(bound)
        let busyPort = Int(UInt16(bigEndian: address.sin_port))

        for (arguments, expected) in [
            (["--metrics-address", "127.0.0.1:\(busyPort)"], "cannot listen for metrics on 127.0.0.1:\(busyPort): Address already in use"),
            (["-o", "metrics_address=localhost:9464"], "bad metrics address localhost:9464: localhost is not an IP address"),
            (["--metrics-address", "127.0.0.1:65536"], "bad metrics address 127.0.0.1:65536: the port must be a number from 0 to 65535"),
            (["--metrics-address", "::1:9464"], "bad metrics address ::1:9464: expected IPv4:port or [IPv6]:port"),
            (["--metrics-address", "[::1]9464"], "bad metrics address [::1]9464: expected [IPv6]:port"),
        ] {
            let result = try runBlobfs(["mount", workspace.root, workspace.mountpoint] + arguments, timeout: 60)
            #expect(result.status != 0, "\(arguments): \(result)")
            #expect(result.stderrText == "blobfs: \(expected)\n", "\(arguments): \(result)")
            #expect(!MountTable.isMounted(workspace.mountpoint), "\(arguments) left a mount")
        }
    }
}
