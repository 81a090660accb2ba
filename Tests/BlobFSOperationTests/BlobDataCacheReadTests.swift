@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing
import TestSupport

/// Reads through the filesystem of a store whose driver is not local, with the blob cache: a
/// cached blob is served from its verified local file; a corrupt object fails its open with EIO;
/// a blob larger than the cache streams, and its first read hashes it whole first, so a corrupt
/// one serves no byte.
@Suite struct BlobDataCacheReadTests {
    struct Fixture {
        let driver = InMemoryDriver()
        let directory: TemporaryDirectory
        let cache: BlobDataCache
        let registry: Registry
        let fs: BlobFileSystem

        init(capacity: Int64) throws {
            directory = try TemporaryDirectory(prefix: "blobfs-cache-fs")
            cache = try BlobDataCache(directory: directory.path, capacity: capacity, blockSize: 16 << 10, parallelism: 2)
            registry = Registry(driver: driver, dataCache: cache)
            fs = BlobFileSystem(registry: registry, options: MountOptions(storageRoot: "/"))
        }

        func push(_ bytes: [UInt8]) throws -> UInt64 {
            let digest = try registry.repository("app").blobs.put(mediaType: "application/octet-stream", bytes).digest
            return try inode(digest)
        }

        func inode(_ digest: Digest) throws -> UInt64 {
            var ino = InodeTable.rootID
            for name in ["repo", "app", "blobs", "\(digest)"] {
                ino = try #require(try fs.lookup(parent: ino, name: name)).ino
            }
            return ino
        }

        func read(_ ino: UInt64, size: Int) throws -> [UInt8] {
            let opened = try fs.open(ino: ino, flags: O_RDONLY)
            defer { fs.release(handle: opened.handle) }
            var result = [UInt8](repeating: 0, count: size)
            var filled = 0
            while filled < size {
                let n = try result.withUnsafeMutableBytes { buffer in
                    try fs.read(handle: opened.handle, offset: Int64(filled), into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
                }
                if n == 0 { break }
                filled += n
            }
            return Array(result[..<filled])
        }
    }

    @Test func aCachedBlobIsServedFromItsVerifiedLocalFile() throws {
        let fixture = try Fixture(capacity: 1 << 20)
        defer { fixture.directory.remove() }
        let bytes = seededBytes(count: 100_000, seed: 41)
        let blob = try fixture.push(bytes)
        #expect(try fixture.read(blob, size: bytes.count) == bytes)
        let digest = Digester.digest(of: bytes)
        #expect(fixture.cache.contains(digest))
        // The verifier knows the cache file's version as intact: it was hashed as it arrived.
        let reader = try fixture.registry.blobStore.open(Descriptor(digest: digest, size: Int64(bytes.count), mediaType: "x"))
        #expect(fixture.fs.verifier.known(digest, in: try reader.version()) == .intact)
        // The store's copy going bad later does not touch what was verified and published.
        try fixture.driver.putContent(PathMapper.path(.blobData(digest)), [UInt8](repeating: 0, count: bytes.count))
        #expect(try fixture.read(blob, size: bytes.count) == bytes)
    }

    @Test func aCorruptObjectFailsItsOpenWithEIOAndIsNotCached() throws {
        let fixture = try Fixture(capacity: 1 << 20)
        defer { fixture.directory.remove() }
        let bytes = seededBytes(count: 50_000, seed: 42)
        let blob = try fixture.push(bytes)
        let digest = Digester.digest(of: bytes)
        var damaged = bytes
        damaged[40_000] ^= 1
        try fixture.driver.putContent(PathMapper.path(.blobData(digest)), damaged)
        #expect(errnoOf { try fixture.fs.open(ino: blob, flags: O_RDONLY) } == EIO)
        #expect(!fixture.cache.contains(digest))
    }

    @Test func aBlobLargerThanTheCacheIsHashedWholeBeforeItsFirstByteIsServed() throws {
        let fixture = try Fixture(capacity: 64 << 10)
        defer { fixture.directory.remove() }
        let bytes = seededBytes(count: 300_000, seed: 43)
        let blob = try fixture.push(bytes)
        let digest = Digester.digest(of: bytes)
        #expect(try fixture.read(blob, size: bytes.count) == bytes)
        #expect(!fixture.cache.contains(digest))

        let other = seededBytes(count: 300_000, seed: 44)
        let corrupt = try fixture.push(other)
        var damaged = other
        damaged[299_999] ^= 1  // the very last byte: only a whole pass finds it
        try fixture.driver.putContent(PathMapper.path(.blobData(Digester.digest(of: other))), damaged)
        let opened = try fixture.fs.open(ino: corrupt, flags: O_RDONLY)
        defer { fixture.fs.release(handle: opened.handle) }
        var first = [UInt8](repeating: 0, count: 4096)
        #expect(errnoOf { try first.withUnsafeMutableBytes { try fixture.fs.read(handle: opened.handle, offset: 0, into: $0) } } == EIO)
        #expect(first == [UInt8](repeating: 0, count: 4096), "no byte of it was served")
    }
}
