import Glibc
import Logging
import Storage
import StorageDriver
import Testing
import TestSupport

@testable import blobfs

/// `--cache-dir`, `--cache-size` and `-o cache_dir=,cache_size=`: sizes as people write them,
/// refused values, and no cache for a local store (its data files are read directly).
@Suite struct BlobCacheOptionTests {
    @Test func sizesAreBytesWithBinarySuffixesOrAPercentage() {
        typealias Size = BlobCacheSettings.CacheSize
        #expect(Size("0") == .bytes(0))
        #expect(Size("4096") == .bytes(4096))
        #expect(Size("512M") == .bytes(512 << 20))
        #expect(Size("10G") == .bytes(10 << 30))
        #expect(Size("10GiB") == .bytes(10 << 30))
        #expect(Size("1.5k") == .bytes(1536))
        #expect(Size("2T") == .bytes(2 << 40))
        #expect(Size("5%") == .percent(5))
        for refused in ["", "G", "-1", "ten", "0%", "101%", "10X", "9999999999T"] {
            #expect(Size(refused) == nil, "\(refused)")
        }
    }

    @Test func flagsWinOverMountOptions() throws {
        let list = try MountOptionList(parsing: ["ro,cache_dir=/var/tmp/c,cache_size=2G"])
        #expect(list.cacheDirectory == "/var/tmp/c" && list.cacheSize == .bytes(2 << 30))
        let fromList = try BlobCacheSettings(directory: nil, size: nil, options: list)
        #expect(fromList.directory == "/var/tmp/c" && fromList.size == .bytes(2 << 30))
        let fromFlags = try BlobCacheSettings(directory: "/other", size: "1M", options: list)
        #expect(fromFlags.directory == "/other" && fromFlags.size == .bytes(1 << 20))
        #expect(throws: CommandFailure.self) { try BlobCacheSettings(directory: nil, size: "lots", options: list) }
        #expect(throws: CommandFailure.self) { try MountOptionList(parsing: ["cache_size=lots"]) }
        #expect(throws: CommandFailure.self) { try MountOptionList(parsing: ["cache_dir="]) }
    }

    @Test func aLocalStoreGetsNoCacheAndARemoteOneGetsItsDirectory() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-cacheopt")
        defer { directory.remove() }
        let settings = try BlobCacheSettings(directory: directory.path + "/cache", size: "1M", options: try MountOptionList(parsing: []))
        let logger = Logger(label: "test")
        #expect(try settings.cache(storageIsLocal: true, logger: logger) == nil)
        #expect(access(directory.path + "/cache", F_OK) != 0, "nothing made for a local store")
        let cache = try #require(try settings.cache(storageIsLocal: false, logger: logger))
        #expect(cache.directory == directory.path + "/cache" && cache.capacity == 1 << 20)
        var st = stat()
        #expect(stat(directory.path + "/cache/tmp", &st) == 0 && st.st_mode & 0o777 == 0o700)
        if geteuid() == 0 { #expect(BlobCacheSettings.defaultDirectory() == "/var/cache/blobfs") }
        let capacity = BlobDataCache.defaultCapacity(for: directory.path)
        #expect(capacity > 0 && capacity <= 10 << 30)
    }
}
