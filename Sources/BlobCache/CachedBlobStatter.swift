import Distribution
import Logging
import Synchronization

/// A descriptor cache in front of a backend statter, with the registry's v3 rules
/// (docs/storage-format.md, The descriptor cache): only a real miss writes back; a cache error
/// falls back to the backend without writing. Where the cache's untyped errors stop (see
/// `BlobDescriptorCache`): what this throws is the backend's `BlobError`, or `cacheFailed`.
public final class CachedBlobStatter: BlobDescriptorService {
    /// Counters, for logs, benchmarks and tests.
    public struct Statistics: Sendable, Hashable {
        public var requests = 0
        public var hits = 0
        public var misses = 0
        public var errors = 0

        public init(requests: Int = 0, hits: Int = 0, misses: Int = 0, errors: Int = 0) {
            (self.requests, self.hits, self.misses, self.errors) = (requests, hits, misses, errors)
        }
    }

    public let cache: any BlobDescriptorCache
    public let backend: any BlobDescriptorService
    private let counters = Mutex(Statistics())
    private let logger: Logger

    public init(cache: any BlobDescriptorCache, backend: any BlobDescriptorService, logger: Logger = Logger(label: "blobfs.cache")) {
        self.cache = cache
        self.backend = backend
        self.logger = logger
    }

    public var statistics: Statistics { counters.withLock { $0 } }

    public func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
        let cacheError: (any Error)?
        do {
            let descriptor = try cache.stat(digest)
            counters.withLock {
                $0.requests += 1
                $0.hits += 1
            }
            return descriptor
        } catch BlobError.unknown {
            cacheError = nil
        } catch {
            cacheError = error
        }
        counters.withLock {
            $0.requests += 1
            if cacheError == nil { $0.misses += 1 } else { $0.errors += 1 }
        }
        if let cacheError {
            logger.warning("descriptor cache failed, reading from storage", metadata: ["digest": "\(digest)", "error": "\(cacheError)"])
        }
        let descriptor = try backend.stat(digest)
        if cacheError == nil {
            do {
                try cache.setDescriptor(digest, descriptor)
            } catch {
                logger.warning("descriptor cache write failed", metadata: ["digest": "\(digest)", "error": "\(error)"])
            }
        }
        return descriptor
    }

    /// `digest` as storage found it (`stored`: its data file's size), with the media type the
    /// cache recorded when the cache agrees. Storage is the record: an entry that names another
    /// digest or another size is a cache problem (logged, counted as an error, and dropped so
    /// the next reader does not meet it), never a property of the blob. A miss writes back, as
    /// `stat` does; a failing cache is only logged.
    public func reconcile(_ digest: Digest, stored: Descriptor) -> Descriptor {
        let cached: Descriptor
        do {
            cached = try cache.stat(digest)
        } catch BlobError.unknown {
            counters.withLock {
                $0.requests += 1
                $0.misses += 1
            }
            try? setDescriptor(digest, stored)
            return stored
        } catch {
            counters.withLock {
                $0.requests += 1
                $0.errors += 1
            }
            logger.warning("descriptor cache failed, reading from storage", metadata: ["digest": "\(digest)", "error": "\(error)"])
            return stored
        }
        guard cached.digest == stored.digest, cached.size == stored.size else {
            counters.withLock {
                $0.requests += 1
                $0.errors += 1
            }
            logger.warning("descriptor cache entry disagrees with storage: dropping it and serving what storage has", metadata: [
                "digest": "\(digest)", "cached": "\(cached)", "storage": "\(stored)",
            ])
            do {
                try cache.clear(digest)
            } catch {
                logger.warning("descriptor cache clear failed", metadata: ["digest": "\(digest)", "error": "\(error)"])
            }
            return stored
        }
        counters.withLock {
            $0.requests += 1
            $0.hits += 1
        }
        return Descriptor(digest: stored.digest, size: stored.size, mediaType: cached.mediaType)
    }

    /// Records in the cache only; always succeeds (errors are logged).
    public func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError) {
        do {
            try cache.setDescriptor(digest, descriptor)
        } catch {
            logger.warning("descriptor cache write failed", metadata: ["digest": "\(digest)", "error": "\(error)"])
        }
    }

    /// Clears the cache first; if that fails the backend is left alone, so the two never disagree
    /// in the direction that would resurrect a deleted blob. A cache's blob error (a miss) is
    /// passed on as it is; any other failure of the cache is `cacheFailed`.
    public func clear(_ digest: Digest) throws(BlobError) {
        do {
            try cache.clear(digest)
        } catch let error as BlobError {
            throw error
        } catch {
            throw .cacheFailed("clear \(digest): \(error)")
        }
        try backend.clear(digest)
    }
}
