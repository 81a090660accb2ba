import BlobCache
import Distribution
import Synchronization
import Testing

/// A descriptor service with scripted answers that counts its calls; it stands for a cache too.
final class FakeService: BlobDescriptorService, BlobDescriptorCache {
    struct State {
        var descriptors: [Digest: Descriptor] = [:]
        var failure: BlobError?
        var stats = 0
        var sets = 0
        var clears = 0
    }
    let state = Mutex(State())

    func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
        try state.withLock { (s) throws(BlobError) in
            s.stats += 1
            if let failure = s.failure { throw failure }
            guard let d = s.descriptors[digest] else { throw .unknown(digest) }
            return d
        }
    }
    func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError) {
        try state.withLock { (s) throws(BlobError) in
            s.sets += 1
            if let failure = s.failure { throw failure }
            s.descriptors[digest] = descriptor
        }
    }
    func clear(_ digest: Digest) throws(BlobError) {
        try state.withLock { (s) throws(BlobError) in
            s.clears += 1
            if let failure = s.failure { throw failure }
            s.descriptors[digest] = nil
        }
    }
    var counts: (stats: Int, sets: Int, clears: Int) { state.withLock { ($0.stats, $0.sets, $0.clears) } }
}

/// The registry's v3 rules for a cache in front of a statter (docs/storage-format.md, The descriptor
/// cache; upstream's TestCacheSet and TestCacheError).
@Suite struct CachedBlobStatterTests {
    let d = digest(0xabc)

    @Test func missWritesBackOnceThenTheCacheWins() throws {
        let cache = FakeService()
        let backend = FakeService()
        let statter = CachedBlobStatter(cache: cache, backend: backend)
        #expect(throws: BlobError.unknown(d)) { try statter.stat(d) }
        #expect(cache.counts.sets == 0)

        let real = Descriptor(digest: d, size: 10)
        backend.state.withLock { $0.descriptors[d] = real }
        #expect(try statter.stat(d) == real)
        #expect(cache.counts.sets == 1)

        // Later the cache's answer wins, even where it differs from storage.
        backend.state.withLock { $0.descriptors[d] = Descriptor(digest: d, size: 99) }
        #expect(try statter.stat(d) == real)
        #expect(backend.counts.stats == 2)
        #expect(statter.statistics == .init(requests: 3, hits: 1, misses: 2, errors: 0))
    }

    @Test func cacheErrorFallsBackWithoutWritingBack() throws {
        let cache = FakeService()
        cache.state.withLock { $0.failure = .io(operation: "redis", path: "127.0.0.1:6379", errno: 111) }
        let backend = FakeService()
        let real = Descriptor(digest: d, size: 10)
        backend.state.withLock { $0.descriptors[d] = real }
        let statter = CachedBlobStatter(cache: cache, backend: backend)
        for _ in 0..<5 { #expect(try statter.stat(d) == real) }
        #expect(cache.counts.sets == 0)  // no write-back storm against a sick cache
        #expect(statter.statistics.errors == 5)
    }

    @Test func backendErrorsPropagateAndTouchNoCache() {
        let cache = FakeService()
        let backend = FakeService()
        backend.state.withLock { $0.failure = .corruptLink(path: "/x/link", reason: "garbage") }
        let statter = CachedBlobStatter(cache: cache, backend: backend)
        #expect(throws: BlobError.corruptLink(path: "/x/link", reason: "garbage")) { try statter.stat(d) }
        #expect(cache.counts.sets == 0)
    }

    @Test func setDescriptorAlwaysSucceedsAndClearStopsAtACacheError() throws {
        let cache = FakeService()
        let backend = FakeService()
        let statter = CachedBlobStatter(cache: cache, backend: backend)
        cache.state.withLock { $0.failure = .io(operation: "redis", path: "x", errno: 110) }
        try statter.setDescriptor(d, Descriptor(digest: d, size: 1))
        #expect(backend.counts.sets == 0)
        #expect(throws: BlobError.self) { try statter.clear(d) }
        #expect(backend.counts.clears == 0)
        cache.state.withLock { $0.failure = nil }
        try statter.clear(d)
        #expect(backend.counts.clears == 1)
    }

    /// A cache's own failure (Redis's, not a blob error) stops at the statter as `cacheFailed`,
    /// and storage is left alone.
    @Test func aCacheFailureThatIsNoBlobErrorIsCacheFailed() throws {
        struct Unreachable: Error, CustomStringConvertible {
            var description: String { "cache unreachable" }
        }
        struct FailingCache: BlobDescriptorCache {
            func stat(_ digest: Digest) throws -> Descriptor { throw Unreachable() }
            func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws { throw Unreachable() }
            func clear(_ digest: Digest) throws { throw Unreachable() }
        }
        let backend = FakeService()
        let real = Descriptor(digest: d, size: 10)
        backend.state.withLock { $0.descriptors[d] = real }
        let statter = CachedBlobStatter(cache: FailingCache(), backend: backend)
        #expect(try statter.stat(d) == real)
        #expect(throws: BlobError.cacheFailed("clear \(d): cache unreachable")) { try statter.clear(d) }
        #expect(backend.counts.clears == 0)
    }
}
