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
        let blobs = try writeStore(root: workspace.root, (0..<40).map { ("cached/repo", seededBytes(count: 50_000 + $0, seed: UInt64(700 + $0))) })
        let redis = try RedisServer()
        let port = redis.port
        // Zero timeouts: every stat reaches the daemon, so every stat consults the cache.
        let options = ["--redis", redis.address, "--blob-timeout", "0", "--dir-timeout", "0", "--negative-timeout", "0"]
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            // Membership always comes from the repository's links (a cache hit is no proof of it);
            // the blob's global descriptor is what the mount reads from the cache and writes back.
            func cachedSize(_ server: RedisServer, _ blob: StoredBlob) throws -> String {
                try server.cli("--raw", "HGET", "blobs::\(blob.digest)", "size")
            }
            expectSameBytes(try Posix.readFile(mount.path(blobs[0].relativePath)), blobs[0].bytes)
            #expect(try cachedSize(redis, blobs[0]) == "\(blobs[0].bytes.count)", "a miss is written back")

            redis.stop()
            for blob in blobs.prefix(4) {
                expectSameBytes(try Posix.readFile(mount.path(blob.relativePath)), blob.bytes, "with Redis down")
            }
            #expect(mount.isRunning)

            let again = try RedisServer(port: port)
            defer { again.stop() }
            // The pool retries a second after its last failure: poll (with a deadline) until the
            // first lookup of a blob not looked up yet (a held name needs no descriptor) has
            // written its descriptor back.
            var written: StoredBlob?
            for blob in blobs[5...] {
                var st = Glibc.stat()
                #expect(lstat(mount.path(blob.relativePath), &st) == 0)
                if try cachedSize(again, blob) == "\(blob.bytes.count)" {
                    written = blob
                    break
                }
                usleep(100_000)
            }
            let blob = try #require(written, "the cache was not used again after Redis came back\n\(mount.log.tail(2000))")
            expectSameBytes(try Posix.readFile(mount.path(blob.relativePath)), blob.bytes)
        }
    }
}
