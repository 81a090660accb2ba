import BlobCache
import BlobCacheRedis
import BlobCacheTesting
import Distribution
import Testing
import TestSupport

/// The shared cache suite against a real redis-server, and the provider's own rules.
@Suite struct RedisCacheProviderTests {
    @Test func passesTheSharedConformanceSuite() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        try checkBlobDescriptorCacheProvider(RedisCacheProvider(configuration: RedisConfiguration(address: redis.address)))
    }

    @Test func writesTheRegistrysExactKeys() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let provider = RedisCacheProvider(configuration: try RedisConfiguration(address: redis.address))
        let bytes = seededBytes(count: 100, seed: 1)
        let canonical = Digester.digest(of: bytes)
        let alias = Digester.digest(of: bytes, algorithm: .sha512)
        let scoped = try provider.repositoryScoped(RepositoryName("team/app"))
        try scoped.setDescriptor(alias, Descriptor(digest: canonical, size: 100))
        let keys = try redis.cli("--raw", "KEYS", "*").split(separator: "\n").map(String.init).sorted()
        #expect(keys == [
            "blobs::\(canonical)", "blobs::\(alias)", "repository::team/app::blobs",
            "repository::team/app::blobs::\(canonical)", "repository::team/app::blobs::\(alias)",
        ].sorted(), "keys: \(keys)")
        #expect(try redis.cli("--raw", "HGET", "blobs::\(alias)", "digest") == canonical.description)
        #expect(try redis.cli("--raw", "HGET", "blobs::\(alias)", "size") == "100")
        #expect(try redis.cli("--raw", "HGET", "blobs::\(alias)", "mediatype") == "application/octet-stream")
        #expect(try redis.cli("--raw", "SISMEMBER", "repository::team/app::blobs", alias.description) == "1")
        #expect(try redis.cli("--raw", "TTL", "blobs::\(alias)") == "-1")  // no expiry, as the registry
    }

    @Test func aMissingRepositoryHashFieldIsAMiss() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let provider = RedisCacheProvider(configuration: try RedisConfiguration(address: redis.address))
        let d = Digester.digest(of: [1])
        let scoped = try provider.repositoryScoped(RepositoryName("a/b"))
        try scoped.setDescriptor(d, Descriptor(digest: d, size: 1))
        try redis.cli("DEL", "repository::a/b::blobs::\(d)")
        #expect(throws: BlobError.unknown(d)) { try scoped.stat(d) }
    }

    @Test func redisDownIsAnErrorThatComesBackByItself() throws {
        let redis = try RedisServer()
        let address = redis.address
        var configuration = try RedisConfiguration(address: address)
        configuration.retryInterval = 0
        let provider = RedisCacheProvider(configuration: configuration)
        let d = Digester.digest(of: [2])
        try provider.setDescriptor(d, Descriptor(digest: d, size: 1))
        redis.stop()
        #expect(throws: RedisError.self) { try provider.stat(d) }
        #expect(throws: RedisError.self) { try provider.stat(d) }
        // Redis returns (empty): the provider reconnects and works again.
        let again = try RedisServer(port: redis.port)
        defer { again.stop() }
        #expect(throws: BlobError.unknown(d)) { try provider.stat(d) }
        try provider.setDescriptor(d, Descriptor(digest: d, size: 1))
        #expect(try provider.stat(d).size == 1)
    }
}
