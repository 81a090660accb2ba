import BlobCache
import Distribution
import Logging
import StorageDriver

/// The registry's global blobStore: the fast read path over `blobs/`, and the only writer of
/// blob data besides commit.
public struct GlobalBlobStore: Sendable {
    let driver: any StorageDriver
    /// The global statter, cached when the registry has a cache.
    let statter: any BlobDescriptorService
    /// Blob data kept on local disk, for a driver whose files are not local (nil: read the
    /// driver directly).
    let dataCache: BlobDataCache?
    let logger: Logger
    /// What listings of a remote store found by stat (`LinkedBlobStore.listing`), for the store's life.
    let listedFiles = ListedDataFiles()
    /// The links listings of a remote store read, per repository, for a few seconds.
    let listedLinks = ListedLinks()

    /// The whole content, read directly with no stat.
    public func get(_ digest: Digest) throws(BlobError) -> [UInt8] {
        do throws(StorageDriverError) {
            return try driver.getContent(PathMapper.path(.blobData(digest)), limit: Int.max)
        } catch .pathNotFound {
            throw .unknown(digest)
        } catch {
            throw error.blobError
        }
    }

    /// The blob's data file as the disk has it now, bypassing any cache: for listings that also
    /// want its modification time.
    public func dataFile(_ digest: Digest) throws(BlobError) -> BlobDataFile {
        try GlobalBlobStatter(driver: driver, logger: logger).dataFile(digest)
    }

    /// The blob as storage has it now (one stat of its data file), with the media type the
    /// descriptor cache holds for it when the cache agrees with the data file: what a mount
    /// serves. A cache entry of another size or digest is dropped, never believed.
    public func describe(_ digest: Digest) throws(BlobError) -> BlobDataFile {
        var file = try dataFile(digest)
        if let cached = statter as? CachedBlobStatter {
            file.descriptor = cached.reconcile(digest, stored: file.descriptor)
        }
        return file
    }

    /// A reader for a descriptor already statted: no second stat. With a data cache, the blob's
    /// local cache file (fetched, verified and published first if it is not there yet), unless
    /// the blob cannot be cached (larger than the cache, or no room): then the driver's file
    /// through a bounded read-ahead window.
    public func open(_ descriptor: Descriptor) throws(BlobError) -> DataFileReader {
        if let dataCache, descriptor.size > 0 {
            if let cached = try dataCache.reader(for: descriptor, driver: driver) { return cached }
            return try dataCache.streamingReader(for: descriptor, driver: driver)
        }
        return try DataFileReader(driver: driver, descriptor: descriptor)
    }

    /// Stores bytes under their sha256 digest. Existence is checked on the driver, not the cache,
    /// so a stale cache can never skip the write (upstream PR #4868).
    public func put(mediaType: String, _ bytes: [UInt8]) throws(BlobError) -> Descriptor {
        let digest = Digester.digest(of: bytes)
        let path = PathMapper.path(.blobData(digest))
        let descriptor = Descriptor(digest: digest, size: Int64(bytes.count), mediaType: mediaType)
        let existing: FileInfo? = try driverCall { () throws(StorageDriverError) in
            do throws(StorageDriverError) { return try driver.stat(path) } catch .pathNotFound { return nil }
        }
        // Same size under a content address: the same bytes. Anything else is rewritten.
        if let existing, existing.kind == .file, existing.size == descriptor.size { return descriptor }
        try driverCall { () throws(StorageDriverError) in try driver.putContent(path, bytes) }
        return descriptor
    }
}
