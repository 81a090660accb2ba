import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A mount sharing a Redis descriptor cache: reads go on from storage while Redis is down, and
/// the cache is used again once it is back.
@Suite struct RedisCacheMountTests {
    @Test func readsSurviveRedisGoingAwayAndTheCacheComesBack() throws {
        let workspace = try Workspace("redis")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, (0..<6).map { ("cached/repo", seededBytes(count: 50_000 + $0, seed: UInt64(700 + $0))) })
        let redis = try RedisServer()
        let port = redis.port
        // Zero timeouts: every stat reaches the daemon, so every stat consults the cache.
        let options = ["--redis", redis.address, "--blob-timeout", "0", "--dir-timeout", "0", "--negative-timeout", "0"]
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let members = "repository::cached/repo::blobs"
            expectSameBytes(try Posix.readFile(mount.path(blobs[0].relativePath)), blobs[0].bytes)
            #expect(try redis.cli("--raw", "SISMEMBER", members, blobs[0].digest.description) == "1", "a miss is written back")

            redis.stop()
            for blob in blobs.prefix(4) {
                expectSameBytes(try Posix.readFile(mount.path(blob.relativePath)), blob.bytes, "with Redis down")
            }
            #expect(mount.isRunning)

            let again = try RedisServer(port: port)
            defer { again.stop() }
            // The pool retries a second after its last failure: poll (with a deadline) until a
            // stat through the mount has written its descriptor back.
            let deadline = Date().addingTimeInterval(15)
            var member = ""
            while Date() < deadline {
                var st = Glibc.stat()
                #expect(lstat(mount.path(blobs[5].relativePath), &st) == 0)
                member = try again.cli("--raw", "SISMEMBER", members, blobs[5].digest.description)
                if member == "1" { break }
                usleep(50_000)
            }
            #expect(member == "1", "the cache was not used again after Redis came back\n\(mount.log.tail(2000))")
            expectSameBytes(try Posix.readFile(mount.path(blobs[5].relativePath)), blobs[5].bytes)
        }
    }
}
