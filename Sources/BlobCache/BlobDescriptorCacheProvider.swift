import Distribution

/// A descriptor cache: the global scope answers "size and canonical digest of d", a
/// repository scope answers "is d in repository R, and with which media type"
/// (docs/storage-format.md, The descriptor cache).
/// Caches are pure caches: storage is the system of record.
public protocol BlobDescriptorCacheProvider: BlobDescriptorService {
    /// The cache of one repository; cheap to call, sharing the provider's data.
    func repositoryScoped(_ name: RepositoryName) throws -> any BlobDescriptorService
}
