import Dispatch
import Distribution
import Foundation
import Glibc
import S3
@testable import Storage
import StorageDriver
import Synchronization
import Testing
import TestSupport

/// The local verified blob cache over the S3 driver on moto: fetched once (counted reads of a
/// wrapper driver) then served from a local file, shared fetches, corrupt objects, LRU eviction
/// that spares open files, restarts, two caches on one directory, blobs larger than the cache,
/// and an outage mid-fetch.
@Suite struct BlobDataCacheTests {
    /// Small blocks, so that a blob of a few hundred KiB is many ranged GETs; the driver's own
    /// read block is no larger, so each of the cache's block reads is one GET of that block.
    static let block = 64 << 10

    static func s3Driver(_ name: String, server: MotoServer? = nil) throws -> S3Driver {
        let tuning = S3DriverTuning(readBlockSize: block)
        guard let server else {
            let shared = try MotoServer.shared()
            return S3Driver(
                client: S3Client(configuration(endpoint: shared.endpoint, bucket: shared.bucket, timeout: .seconds(30))),
                rootDirectory: "/\(name)-\(UUID().uuidString)", tuning: tuning)
        }
        return S3Driver(
            client: S3Client(configuration(endpoint: server.endpoint, bucket: server.bucket, timeout: .seconds(2))),
            rootDirectory: "/\(name)", tuning: tuning)
    }

    static func configuration(endpoint: String, bucket: String, timeout: Duration) -> S3Configuration {
        S3Configuration(
            endpoint: endpoint, bucket: bucket,
            credentials: S3Credentials(accessKey: MotoServer.accessKey, secretKey: MotoServer.secretKey),
            requestTimeout: timeout, connectTimeout: min(timeout, .seconds(5)), maxAttempts: 3, retryBudget: .seconds(5),
            initialBackoff: .milliseconds(50))
    }

    /// Stores `bytes` as a blob straight through the driver (not counted) and returns its descriptor.
    static func store(_ bytes: [UInt8], in driver: any StorageDriver) throws -> Descriptor {
        try Registry(driver: driver).blobStore.put(mediaType: "application/octet-stream", bytes)
    }

    static func readAll(_ reader: DataFileReader) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(reader.descriptor.size))
        // Kernel-sized reads at ascending offsets, as a mount makes them.
        var offset = 0
        while offset < bytes.count {
            let n = try bytes.withUnsafeMutableBytes { buffer in
                try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<min(offset + (128 << 10), buffer.count)]), at: Int64(offset))
            }
            #expect(n > 0)
            offset += n
        }
        return bytes
    }

    /// Waits for a condition another thread makes true, yielding the CPU meanwhile; a condition
    /// that stays false is a test failure after 60 s, not a hang.
    static func waitUntil(_ condition: () -> Bool) {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("the condition never became true")
                return
            }
            sched_yield()
        }
    }

    static func cache(_ directory: String, capacity: Int64) throws -> BlobDataCache {
        try BlobDataCache(directory: directory, capacity: capacity, blockSize: block, parallelism: 3)
    }

    /// The names in the cache's temporary directory.
    static func temporaries(_ cache: BlobDataCache) -> [String] {
        CacheDirectory.names(in: cache.directory + "/tmp")
    }

    @Test func aBlobIsFetchedOnceThenServedFromItsLocalFile() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("once")
        let bytes = seededBytes(count: 5 * Self.block + 1234, seed: 1)
        let descriptor = try Self.store(bytes, in: s3)
        let counting = CountingDriver(base: s3)
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        let registry = Registry(driver: counting, dataCache: cache)

        for _ in 0..<3 {
            let reader = try registry.blobStore.open(descriptor)
            #expect(reader.verifiedOnArrival)
            let local = try #require(try reader.localFile(), "a cache file is a local file, for passthrough")
            #expect(local.size == descriptor.size)
            #expect(try Self.readAll(reader) == bytes)
        }
        // One reader, one read per block (6 blocks): every later open is the local file.
        #expect(counting.counts.withLock { $0 } == CountingDriver.Counts(readers: 1, reads: 6))
        #expect(try Posix.readFile(cache.path(of: descriptor.digest)) == bytes)
        #expect(try sha256Hex(ofFile: cache.path(of: descriptor.digest)) == descriptor.digest.hex)
        #expect(cache.usage.blobs == 1 && cache.usage.bytes == descriptor.size)
        #expect(Self.temporaries(cache).isEmpty)
    }

    @Test func concurrentOpenersShareOneFetch() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("shared")
        let bytes = seededBytes(count: 8 * Self.block, seed: 2)
        let descriptor = try Self.store(bytes, in: s3)
        let openers = 8
        // The fetch's first read waits until every opener waits for that fetch.
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        let counting = CountingDriver(base: s3) { number in
            if number == 1 { Self.waitUntil { cache.openersSharingFetch(of: descriptor.digest) == openers } }
        }
        let registry = Registry(driver: counting, dataCache: cache)
        let results = Mutex<[Result<[UInt8], any Error>]>([])
        let group = DispatchGroup()
        for _ in 0..<openers {
            group.enter()
            // Threads of their own: a dispatch queue runs about one task per CPU and adds threads
            // for blocked ones only slowly.
            Thread.detachNewThread {
                defer { group.leave() }
                let result = Result { try Self.readAll(try registry.blobStore.open(descriptor)) }
                results.withLock { $0.append(result) }
            }
        }
        group.wait()
        let all = results.withLock { $0 }
        #expect(all.count == openers)
        for result in all { #expect((try? result.get()) == bytes) }
        #expect(counting.counts.withLock { $0 } == CountingDriver.Counts(readers: 1, reads: 8))
    }

    @Test func aCorruptObjectIsAnErrorAndNothingIsPublished() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("corrupt")
        let bytes = seededBytes(count: 3 * Self.block + 7, seed: 3)
        let digest = Digester.digest(of: bytes)
        var damaged = bytes
        damaged[2 * Self.block + 1] ^= 0x40
        try s3.putContent(PathMapper.path(.blobData(digest)), damaged)
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        let registry = Registry(driver: s3, dataCache: cache)
        let descriptor = Descriptor(digest: digest, size: Int64(bytes.count), mediaType: "application/octet-stream")

        for _ in 0..<2 {  // and again: a failed fetch leaves nothing that a second open would trust
            let error = #expect(throws: BlobError.self) { try registry.blobStore.open(descriptor) }
            guard case .invalidDigest(let named, let reason)? = error else {
                Issue.record("expected invalidDigest, got \(String(describing: error))")
                return
            }
            #expect(named == digest)
            #expect(reason.contains(Digester.digest(of: damaged).hex))
            #expect(!cache.contains(digest))
            #expect(Self.temporaries(cache).isEmpty)
            #expect(cache.usage.blobs == 0 && cache.usage.bytes == 0)
        }
    }

    @Test func openersWaitingForAFetchThatFailsFailTooWithoutFetchingAgain() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("corrupt-shared")
        let bytes = seededBytes(count: 4 * Self.block, seed: 8)
        let digest = Digester.digest(of: bytes)
        try s3.putContent(PathMapper.path(.blobData(digest)), seededBytes(count: bytes.count, seed: 9))
        let descriptor = Descriptor(digest: digest, size: Int64(bytes.count), mediaType: "application/octet-stream")
        let openers = 4
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        let counting = CountingDriver(base: s3) { number in
            if number == 1 { Self.waitUntil { cache.openersSharingFetch(of: digest) == openers } }
        }
        let registry = Registry(driver: counting, dataCache: cache)
        let errors = Mutex<[BlobError]>([])
        let group = DispatchGroup()
        for _ in 0..<openers {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do throws(BlobError) {
                    _ = try registry.blobStore.open(descriptor)
                } catch {
                    errors.withLock { $0.append(error) }
                }
            }
        }
        group.wait()
        let all = errors.withLock { $0 }
        #expect(all.count == openers)
        #expect(all.allSatisfy { if case .invalidDigest(digest, _) = $0 { true } else { false } }, "\(all)")
        // Every opener waited for the one fetch (its first read waited for them), and none fetched again.
        #expect(counting.counts.withLock { $0 } == CountingDriver.Counts(readers: 1, reads: 4))
        #expect(!cache.contains(digest))
        // The failure is not remembered past its fetch: a later open fetches again.
        #expect(throws: BlobError.self) { try registry.blobStore.open(descriptor) }
        #expect(counting.counts.withLock { $0.readers } == 2)
    }

    @Test func evictionRemovesTheLeastRecentlyUsedAndNeverAnOpenFile() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("lru")
        let size = 4 * Self.block
        let blobs = try (0..<5).map { index in
            let bytes = seededBytes(count: size, seed: 10 + UInt64(index))
            return (bytes, try Self.store(bytes, in: s3))
        }
        // Room for three blobs.
        let cache = try Self.cache(directory.path, capacity: Int64(3 * size + size / 2))
        let registry = Registry(driver: s3, dataCache: cache)

        let held = try registry.blobStore.open(blobs[0].1)  // the oldest, and open throughout
        for index in 1...2 { _ = try Self.readAll(try registry.blobStore.open(blobs[index].1)) }
        #expect(cache.usage.blobs == 3)
        // A fourth needs room: the oldest unopened one (1) goes, not the open one (0).
        #expect(try Self.readAll(try registry.blobStore.open(blobs[3].1)) == blobs[3].0)
        #expect(cache.contains(blobs[0].1.digest))
        #expect(!cache.contains(blobs[1].1.digest))
        #expect(cache.contains(blobs[2].1.digest) && cache.contains(blobs[3].1.digest))
        #expect(try Self.readAll(held) == blobs[0].0)
        #expect(cache.usage.bytes <= cache.capacity)

        // Every cached blob open: no room can be made, so the fifth is read from storage,
        // and nothing is evicted for it.
        let open = try [2, 3].map { try registry.blobStore.open(blobs[$0].1) }
        let uncached = try registry.blobStore.open(blobs[4].1)
        #expect(!uncached.verifiedOnArrival)
        #expect(try uncached.localFile() == nil)
        #expect(try Self.readAll(uncached) == blobs[4].0)
        for index in [0, 2, 3] { #expect(cache.contains(blobs[index].1.digest)) }
        #expect(!cache.contains(blobs[4].1.digest))
        _ = open
    }

    @Test func aRestartKeepsTheCacheAndRemovesWhatACrashLeft() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("restart")
        let bytes = seededBytes(count: 2 * Self.block + 99, seed: 4)
        let descriptor = try Self.store(bytes, in: s3)
        do {
            let cache = try Self.cache(directory.path, capacity: 10 << 20)
            _ = try Self.readAll(try Registry(driver: s3, dataCache: cache).blobStore.open(descriptor))
        }
        // What a crash leaves: a temporary no fetch holds; and what is not the cache's.
        let temporary = directory.path + "/tmp/\(descriptor.digest.hex).99999.0"
        try Posix.writeFile(temporary, [1, 2, 3])
        let foreign = directory.path + "/sha256/\(descriptor.digest.hex.prefix(2))/not-a-digest"
        try Posix.writeFile(foreign, [4])

        let counting = CountingDriver(base: s3)
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        #expect(cache.usage.blobs == 1 && cache.usage.bytes == descriptor.size)
        #expect(access(temporary, F_OK) != 0)
        #expect(access(foreign, F_OK) != 0)
        let reader = try Registry(driver: counting, dataCache: cache).blobStore.open(descriptor)
        #expect(reader.verifiedOnArrival)
        #expect(try Self.readAll(reader) == bytes)
        #expect(counting.counts.withLock { $0 } == CountingDriver.Counts(readers: 0, reads: 0))

        // A smaller cache at the next start evicts down to its size.
        let small = try Self.cache(directory.path, capacity: 100)
        #expect(small.usage.blobs == 1, "the file is open (the reader above) and stays")
        _ = reader
    }

    @Test func aDirectoryOthersCanWriteIsRefused() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        #expect(chmod(directory.path, 0o777) == 0)
        let error = #expect(throws: BlobError.self) { try Self.cache(directory.path, capacity: 1 << 20) }
        guard case .io(_, let path, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(path == directory.path && code == EACCES)
        #expect(chmod(directory.path, 0o700) == 0)
        _ = try Self.cache(directory.path, capacity: 1 << 20)
    }

    @Test func aCacheFileOfTheWrongSizeIsFetchedAgain() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("resize")
        let bytes = seededBytes(count: Self.block + 5, seed: 5)
        let descriptor = try Self.store(bytes, in: s3)
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        _ = try Self.readAll(try Registry(driver: s3, dataCache: cache).blobStore.open(descriptor))
        // Cut short by a hand or a disk: not the blob any more.
        #expect(truncate(cache.path(of: descriptor.digest), 10) == 0)
        let counting = CountingDriver(base: s3)
        let reader = try Registry(driver: counting, dataCache: cache).blobStore.open(descriptor)
        #expect(try Self.readAll(reader) == bytes)
        #expect(counting.counts.withLock { $0.readers } == 1)
        #expect(try Posix.readFile(cache.path(of: descriptor.digest)) == bytes)
    }

    @Test func twoCachesOnOneDirectoryShareFilesAndNeverEvictOneTheOtherHasOpen() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("two")
        let size = 4 * Self.block
        let blobs = try (0..<3).map { index in
            let bytes = seededBytes(count: size, seed: 20 + UInt64(index))
            return (bytes, try Self.store(bytes, in: s3))
        }
        // Two daemons on one directory, both started while it is empty.
        let first = try Self.cache(directory.path, capacity: Int64(2 * size + size / 2))
        let second = try Self.cache(directory.path, capacity: Int64(2 * size + size / 2))
        let firstRegistry = Registry(driver: s3, dataCache: first)
        let counting = CountingDriver(base: s3)
        let secondRegistry = Registry(driver: counting, dataCache: second)

        let heldByFirst = try firstRegistry.blobStore.open(blobs[0].1)
        // The second finds what the first published: no fetch.
        #expect(try Self.readAll(try secondRegistry.blobStore.open(blobs[0].1)) == blobs[0].0)
        #expect(counting.counts.withLock { $0.readers } == 0)
        // The second fills its share: blob 0 is its least recently used, but the first holds it.
        _ = try Self.readAll(try secondRegistry.blobStore.open(blobs[1].1))
        _ = try Self.readAll(try secondRegistry.blobStore.open(blobs[2].1))
        #expect(first.contains(blobs[0].1.digest))
        #expect(try Self.readAll(heldByFirst) == blobs[0].0)
        #expect(try Posix.readFile(first.path(of: blobs[0].1.digest)) == blobs[0].0)
        #expect(second.contains(blobs[2].1.digest))
    }

    @Test func aBlobLargerThanTheCacheStreamsThroughAReadAheadWindowAndNothingIsCached() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("large")
        let bytes = seededBytes(count: 6 * Self.block + 3, seed: 6)
        let descriptor = try Self.store(bytes, in: s3)
        let counting = CountingDriver(base: s3)
        let cache = try Self.cache(directory.path, capacity: Int64(2 * Self.block))
        let reader = try Registry(driver: counting, dataCache: cache).blobStore.open(descriptor)
        #expect(!reader.verifiedOnArrival, "not hashed on arrival: the filesystem's first read hashes it")
        #expect(try reader.localFile() == nil)
        let hash = try WholeFileHasher().hash(reader, algorithms: [.sha256])
        #expect(hash.digests == [descriptor.digest])
        // The hash pass (what the filesystem's first read does) and the reads each fetch every block once.
        #expect(counting.counts.withLock { $0 } == CountingDriver.Counts(readers: 1, reads: 7))
        // Again from the start: a seek back (the last read ended in block 6), so its first 128 KiB
        // are one read of exactly those bytes; the reads on from there are sequential and go
        // through the window, which fetches blocks 2, 3, 4 and 6 (5 is still kept from the hash pass).
        #expect(try Self.readAll(reader) == bytes)
        #expect(counting.rangeReads.withLock { $0 } == [128 << 10])
        #expect(counting.counts.withLock { $0 } == CountingDriver.Counts(readers: 1, reads: 12))
        // A read elsewhere (a seek) into a block not here reads its own 4 KiB, nothing around or
        // ahead of it.
        var small = [UInt8](repeating: 0, count: 4096)
        let offset = 3 * Self.block + 100
        #expect(try small.withUnsafeMutableBytes { try reader.read(into: $0, at: Int64(offset)) } == 4096)
        #expect(small == Array(bytes[offset..<(offset + 4096)]))
        #expect(counting.rangeReads.withLock { $0 } == [128 << 10, 4096])
        #expect(counting.counts.withLock { $0.reads } == 13)
        // The read on from it is sequential: its block and the window ahead come in (blocks 3 to 6).
        #expect(try small.withUnsafeMutableBytes { try reader.read(into: $0, at: Int64(offset + 4096)) } == 4096)
        #expect(small == Array(bytes[(offset + 4096)..<(offset + 8192)]))
        #expect(counting.rangeReads.withLock { $0 }.count == 2)
        #expect(cache.usage.blobs == 0 && !cache.contains(descriptor.digest))
        #expect(CacheDirectory.names(in: directory.path + "/sha256").isEmpty)
    }

    @Test func anOutageMidFetchIsAnErrorWithinTheDeadlineAndPublishesNothing() throws {
        let server = try MotoServer()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "blobfs-cache")
        defer { directory.remove() }
        let s3 = try Self.s3Driver("outage", server: server)
        let bytes = seededBytes(count: 12 * Self.block, seed: 7)
        let descriptor = try Self.store(bytes, in: s3)
        // The storage goes away once the fetch is under way (its second block read).
        let counting = CountingDriver(base: s3) { number in
            if number == 2 { server.stop() }
        }
        let cache = try Self.cache(directory.path, capacity: 10 << 20)
        let registry = Registry(driver: counting, dataCache: cache)
        let started = ContinuousClock.now
        let error = #expect(throws: BlobError.self) { try registry.blobStore.open(descriptor) }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(20), "took \(elapsed)")
        guard case .io(_, _, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == EIO)
        #expect(!cache.contains(descriptor.digest))
        #expect(Self.temporaries(cache).isEmpty)
        #expect(cache.usage.blobs == 0 && cache.usage.bytes == 0)
    }

    /// A cache directory on a full disk: the fetch fails with the disk's ENOSPC (not EIO, not an
    /// outage of the store), nothing is published and the temporary is gone. The disk is a
    /// 256 KiB tmpfs, the blob 12 blocks of 64 KiB.
    @Test func aFullDiskFailsTheFetchWithENOSPCAndPublishesNothing() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cache-full")
        defer { directory.remove() }
        guard mount("tmpfs", directory.path, "tmpfs", 0, "size=256k,mode=0700") == 0 else {
            Issue.record("mounting a tmpfs at \(directory.path): \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(directory.path, Int32(MNT_DETACH)) }
        let s3 = try Self.s3Driver("full-disk")
        let bytes = seededBytes(count: 12 * Self.block, seed: 8)
        let descriptor = try Self.store(bytes, in: s3)
        let cache = try Self.cache(directory.path + "/cache", capacity: 10 << 20)
        let registry = Registry(driver: s3, dataCache: cache)
        let error = #expect(throws: BlobError.self) { try registry.blobStore.open(descriptor) }
        guard case .io(_, _, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == ENOSPC, "\(String(describing: error))")
        #expect(!cache.contains(descriptor.digest))
        #expect(Self.temporaries(cache).isEmpty)
        #expect(cache.usage.blobs == 0 && cache.usage.bytes == 0)
    }

    /// A fetch's blocks grow with the blob: a quarter of each copier's share, whole multiples of
    /// the smallest block, never past the largest.
    @Test func aFetchsBlocksGrowWithTheBlob() {
        let fetch = BlobFetch(blockSize: 4 << 20, parallelism: 4)
        let mib: Int64 = 1 << 20
        let expected: [(size: Int64, block: Int64)] = [
            (1, 4 * mib), (64 * mib, 4 * mib), (64 * mib + 16, 8 * mib), (256 * mib, 16 * mib), (1024 * mib, 32 * mib), (102_400 * mib, 32 * mib),
        ]
        for (size, block) in expected {
            #expect(Int64(fetch.blockSize(for: size)) == block, "a blob of \(size) bytes")
        }
        #expect(BlobFetch(blockSize: 64 << 10, parallelism: 3, largestBlockSize: 1).blockSize(for: 1 << 30) == 64 << 10, "never below the smallest")
    }
}
