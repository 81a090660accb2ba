import Distribution
import Instrumentation
import Synchronization

/// The in-memory descriptor cache: one LRU keyed by (digest, repository), bounded by entry
/// count, as the registry's v3 in-memory provider (docs/storage-format.md, The descriptor cache).
public final class InMemoryCacheProvider: BlobDescriptorCacheProvider {
    /// The registry's default `blobdescriptorsize`.
    public static let defaultCapacity = 10_000

    struct Key: Hashable {
        var digest: Digest
        var repository: RepositoryName?  // nil for the global scope
    }

    private let entries: Mutex<LRUCache<Key, Descriptor>>

    /// `capacity` nil means unbounded.
    public init(capacity: Int? = InMemoryCacheProvider.defaultCapacity) {
        entries = Mutex(LRUCache(capacity: capacity))
    }

    /// Entries held now (global and repository-scoped).
    public var count: Int { entries.withLock { $0.count } }

    public func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
        try lookup(Key(digest: digest, repository: nil))
    }

    /// First writer wins: a known digest is left as it is. An alias also records the canonical key.
    public func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError) {
        try descriptor.validate()
        entries.withLock { entries in
            guard entries.peek(Key(digest: digest, repository: nil)) == nil else { return }
            if digest.algorithm != descriptor.digest.algorithm,
                entries.peek(Key(digest: descriptor.digest, repository: nil)) == nil
            {
                entries.set(Key(digest: descriptor.digest, repository: nil), descriptor)
            }
            entries.set(Key(digest: digest, repository: nil), descriptor)
        }
    }

    public func clear(_ digest: Digest) throws(BlobError) {
        _ = entries.withLock { $0.remove(Key(digest: digest, repository: nil)) }
    }

    public func repositoryScoped(_ name: RepositoryName) throws(BlobError) -> any BlobDescriptorCache {
        RepositoryScope(provider: self, repository: name)
    }

    fileprivate func lookup(_ key: Key) throws(BlobError) -> Descriptor {
        guard let descriptor = entries.withLock({ $0.get(key) }) else {
            BlobfsMetrics.current?.memoryCacheMisses.increment()
            throw .unknown(key.digest)
        }
        BlobfsMetrics.current?.memoryCacheHits.increment()
        return descriptor
    }

    fileprivate func setRepositoryEntry(_ key: Key, _ descriptor: Descriptor) {
        entries.withLock { $0.set(key, descriptor) }
    }

    fileprivate func removeRepositoryEntry(_ key: Key) {
        _ = entries.withLock { $0.remove(key) }
    }

    /// One repository's view: membership and a repository-local media type.
    private struct RepositoryScope: BlobDescriptorCache {
        let provider: InMemoryCacheProvider
        let repository: RepositoryName

        func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
            try provider.lookup(Key(digest: digest, repository: repository))
        }

        func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError) {
            try descriptor.validate()
            provider.setRepositoryEntry(Key(digest: digest, repository: repository), descriptor)
            try provider.setDescriptor(digest, descriptor)
        }

        /// Revokes membership only; the global entry stays for other repositories.
        func clear(_ digest: Digest) throws(BlobError) {
            provider.removeRepositoryEntry(Key(digest: digest, repository: repository))
        }
    }
}
