import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A Redis cache is never the record: entries that lie about a blob's canonical digest, its size
/// or a repository's membership change nothing that a mount serves (docs/hostile-input.md, F3, F4, F7).
/// Storage is asked; the lying entry is logged as a cache problem.
@Suite struct PoisonedRedisTests {
    @Test func lyingEntriesNeitherServeOtherBytesNorOpenOtherRepositoriesNorBreakGoodBlobs() throws {
        let workspace = try Workspace("poisoned")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [
            ("library/alpine", seededBytes(count: 1_000_000, seed: 930)),  // D1
            ("library/alpine", seededBytes(count: 5000, seed: 931)),  // D2
            ("team/app", seededBytes(count: 7000, seed: 932)),  // D0, only in team/app
        ])
        let (d1, d2, d0) = (blobs[0], blobs[1], blobs[2])
        let redis = try RedisServer()
        defer { redis.stop() }
        // F3c: D2's global entry and its membership say D1's digest and size.
        _ = try redis.cli("HSET", "blobs::\(d2.digest)", "digest", "\(d1.digest)", "size", "\(d1.bytes.count)", "mediatype", "x/y")
        _ = try redis.cli("SADD", "repository::library/alpine::blobs", "\(d2.digest)")
        _ = try redis.cli("HSET", "repository::library/alpine::blobs::\(d2.digest)", "digest", "\(d1.digest)", "mediatype", "x/y")
        // F4: team/app is said to hold D1, which it does not link.
        _ = try redis.cli("SADD", "repository::team/app::blobs", "\(d1.digest)")
        _ = try redis.cli("HSET", "repository::team/app::blobs::\(d1.digest)", "digest", "\(d1.digest)", "mediatype", "x/y")
        // F7: D0's size is wrong.
        _ = try redis.cli("HSET", "blobs::\(d0.digest)", "digest", "\(d0.digest)", "size", "10", "mediatype", "x/y")
        // And a phantom: an entry for a blob with no data and no link.
        let phantom = Digester.digest(of: Array("phantom".utf8))
        _ = try redis.cli("HSET", "blobs::\(phantom)", "digest", "\(phantom)", "size", "5", "mediatype", "x/y")
        _ = try redis.cli("SADD", "repository::team/app::blobs", "\(phantom)")

        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--redis", redis.address]) {
            (mount: BlobfsMount) throws -> Void in
            // D2 has D2's bytes, size and digest attribute.
            let d2Path = mount.path(d2.relativePath)
            expectSameBytes(try Posix.readFile(d2Path), d2.bytes, "D2 through a lying cache")
            #expect(Posix.stat(d2Path).map { Int($0.st_size) } == .success(d2.bytes.count))
            let attribute = try Command.run("getfattr", ["--only-values", "-n", "user.blobfs.digest", d2Path])
            #expect(attribute.stdoutText == d2.digest.description, "\(attribute)")
            // team/app does not serve D1, nor the phantom.
            #expect(Posix.stat(mount.path("repo/team/app/blobs/\(d1.digest)")).failure == .ENOENT)
            #expect(Posix.stat(mount.path("repo/team/app/blobs/\(phantom)")).failure == .ENOENT)
            // D0 reads whole and right: a wrong size is a cache problem, not a corrupt blob.
            let d0Path = mount.path(d0.relativePath)
            #expect(Posix.stat(d0Path).map { Int($0.st_size) } == .success(d0.bytes.count))
            expectSameBytes(try Posix.readFile(d0Path), d0.bytes, "D0 with a wrong size in the cache")
            expectSameBytes(try Posix.readFile(mount.path(d1.relativePath)), d1.bytes, "D1")

            let log = mount.log
            #expect(log.contains("disagrees with storage"), "the lying entries are logged as cache problems:\n\(log.tail(3000))")
            #expect(!log.contains("does not match"), "no blob was called corrupt:\n\(log.tail(3000))")
            // The lying global entries were dropped (or replaced by what storage has).
            for blob in [d2, d0] {
                let size = try redis.cli("--raw", "HGET", "blobs::\(blob.digest)", "size")
                #expect(size.isEmpty || size == "\(blob.bytes.count)", "\(blob): cache size now \(size)")
            }
        }
    }
}
