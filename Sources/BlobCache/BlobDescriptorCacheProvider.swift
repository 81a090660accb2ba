import Distribution

/// One scope of a descriptor cache (global, or one repository's). Its errors are not blob errors:
/// besides `BlobError.unknown` (a miss) and `BlobError.invalidDescriptor`, a cache throws what its
/// backend does (`RedisError` for Redis), untyped, so that callers and tests see the backend's own
/// failure. They stop at `CachedBlobStatter`, the only user of a cache: a failed stat falls back to
/// storage without writing back, a failed write-back is logged, and a failed clear becomes
/// `BlobError.cacheFailed` (storage is then left alone), so that nothing below Storage's typed
/// `throws(BlobError)` carries a cache's error type.
public protocol BlobDescriptorCache: Sendable {
    /// The descriptor recorded for `digest`; `BlobError.unknown` on a miss.
    func stat(_ digest: Digest) throws -> Descriptor
    /// Records `digest` (possibly an alias) with a canonical descriptor.
    func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws
    /// Forgets `digest` in this scope.
    func clear(_ digest: Digest) throws
}

/// A descriptor cache: the global scope answers "size and canonical digest of d", a
/// repository scope answers "is d in repository R, and with which media type"
/// (docs/storage-format.md, The descriptor cache).
/// Caches are pure caches: storage is the system of record.
public protocol BlobDescriptorCacheProvider: BlobDescriptorCache {
    /// The cache of one repository; cheap to call, sharing the provider's data.
    func repositoryScoped(_ name: RepositoryName) throws(BlobError) -> any BlobDescriptorCache
}
