import BlobCache
import BlobCacheTesting
import Distribution
import Testing

func digest(_ n: Int, _ algorithm: DigestAlgorithm = .sha256) -> Digest {
    let hex = String(n, radix: 16)
    return try! Digest(parsing: "\(algorithm.rawValue):\(String(repeating: "0", count: algorithm.hexLength - hex.count))\(hex)")
}

@Suite struct InMemoryCacheProviderTests {
    @Test func passesTheSharedConformanceSuite() throws {
        try checkBlobDescriptorCacheProvider(InMemoryCacheProvider())
    }

    @Test func conformanceSuiteCatchesABrokenProvider() {
        // A provider whose clear does nothing must fail the suite: the suite can fail.
        #expect(throws: CacheConformanceFailure.self) { try checkBlobDescriptorCacheProvider(ForgetfulProvider()) }
    }

    @Test func isBoundedAndEvictsTheLeastRecentlyUsed() throws {
        let cache = InMemoryCacheProvider(capacity: 3)
        for n in 1...3 { try cache.setDescriptor(digest(n), Descriptor(digest: digest(n), size: Int64(n))) }
        _ = try cache.stat(digest(1))  // 1 is now the most recently used; 2 the least
        try cache.setDescriptor(digest(4), Descriptor(digest: digest(4), size: 4))
        #expect(cache.count == 3)
        #expect(throws: BlobError.unknown(digest(2))) { try cache.stat(digest(2)) }
        for n in [1, 3, 4] { #expect(try cache.stat(digest(n)).size == Int64(n)) }
    }

    @Test func holdsTenThousandEntriesByDefault() throws {
        let cache = InMemoryCacheProvider()
        for n in 1...10_050 { try cache.setDescriptor(digest(n), Descriptor(digest: digest(n), size: 1)) }
        #expect(cache.count == InMemoryCacheProvider.defaultCapacity)
        #expect(throws: BlobError.self) { try cache.stat(digest(50)) }
        #expect(try cache.stat(digest(51)).size == 1)
    }

    @Test func repositoryClearKeepsTheGlobalEntry() throws {
        let cache = InMemoryCacheProvider()
        let repo = try cache.repositoryScoped(RepositoryName("a/b"))
        let descriptor = Descriptor(digest: digest(7), size: 7)
        try repo.setDescriptor(digest(7), descriptor)
        try repo.clear(digest(7))
        #expect(throws: BlobError.unknown(digest(7))) { try repo.stat(digest(7)) }
        #expect(try cache.stat(digest(7)) == descriptor)
    }
}

/// A provider that never forgets: it violates the clear rules on purpose.
final class ForgetfulProvider: BlobDescriptorCacheProvider {
    let inner = InMemoryCacheProvider()
    func stat(_ digest: Digest) throws -> Descriptor { try inner.stat(digest) }
    func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws { try inner.setDescriptor(digest, descriptor) }
    func clear(_ digest: Digest) throws {}
    func repositoryScoped(_ name: RepositoryName) throws(BlobError) -> any BlobDescriptorCache {
        Scope(inner: try inner.repositoryScoped(name))
    }
    struct Scope: BlobDescriptorCache {
        let inner: any BlobDescriptorCache
        func stat(_ digest: Digest) throws -> Descriptor { try inner.stat(digest) }
        func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws { try inner.setDescriptor(digest, descriptor) }
        func clear(_ digest: Digest) throws {}
    }
}
