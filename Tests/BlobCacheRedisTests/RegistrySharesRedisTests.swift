import BlobCache
import BlobCacheRedis
import Distribution
import Storage
import StorageDriver
import Testing
import TestSupport

/// Debian's docker-registry and blobfs share one Redis cache: each reads what the other wrote.
@Suite(.serialized) struct RegistrySharesRedisTests {
    @Test func registryKeysReadAsTheSameDescriptors() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let root = try TemporaryDirectory(prefix: "blobfs-redis-interop")
        defer { root.remove() }
        let bytes = seededBytes(count: 4321, seed: 60)
        let digest = Digester.digest(of: bytes)
        let alias = Digester.digest(of: bytes, algorithm: .sha512)
        try RegistryServer.withServer(root: root.path, cache: .redis(address: redis.address)) { server throws in
            #expect(try server.client.pushMonolithic(repository: "team/app", bytes: bytes, digest: "\(alias)").status == 201)
            // A HEAD by each digest makes the registry cache both (a miss writes back).
            #expect(try server.client.head(repository: "team/app", digest: "\(digest)").status == 200)
            #expect(try server.client.head(repository: "team/app", digest: "\(alias)").status == 200)
        }
        let dump = try redis.cli("--raw", "KEYS", "*")
        let provider = RedisCacheProvider(configuration: try RedisConfiguration(address: redis.address))
        let scoped = try provider.repositoryScoped(RepositoryName("team/app"))
        let expected = Descriptor(digest: digest, size: 4321)
        #expect(try provider.stat(digest) == expected, "keys the registry left: \(dump)")
        #expect(try provider.stat(alias) == expected, "keys the registry left: \(dump)")
        #expect(try scoped.stat(digest) == expected, "keys the registry left: \(dump)")
        #expect(try scoped.stat(alias) == expected, "keys the registry left: \(dump)")
        #expect(throws: BlobError.unknown(digest), "keys: \(dump)") {
            try provider.repositoryScoped(RepositoryName("other/repo")).stat(digest)
        }
    }

    @Test func descriptorsWeWriteAreServedByTheRegistryFromCache() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let root = try TemporaryDirectory(prefix: "blobfs-redis-interop")
        defer { root.remove() }
        let provider = RedisCacheProvider(configuration: try RedisConfiguration(address: redis.address))
        let registry = Registry(driver: try FilesystemDriver(root: root.path), cache: provider)
        let repository = try registry.repository("library/cached")
        let bytes = seededBytes(count: 999, seed: 61)
        let writer = try repository.blobs.create()
        try writer.write(bytes)
        let descriptor = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: bytes), size: 0))
        // Commit recorded the descriptor in Redis; now remove the link on disk: only the cache
        // still knows the blob is in this repository.
        try registry.driver.delete(PathMapper.path(.layerLink(repository.name, descriptor.digest)))
        let dump = try redis.cli("--raw", "KEYS", "*")
        try RegistryServer.withServer(root: root.path, cache: .redis(address: redis.address)) { server in
            let head = try server.client.head(repository: "library/cached", digest: "\(descriptor.digest)")
            #expect(head.status == 200, "the registry did not use our cache entry; keys: \(dump)\n\(server.log.suffix(2000))")
            #expect(head.header("docker-content-digest") == "\(descriptor.digest)")
            #expect(head.header("content-length") == "999")
        }
        // And without the cache the registry says the truth: the link is gone.
        try RegistryServer.withServer(root: root.path) { server throws in
            #expect(try server.client.head(repository: "library/cached", digest: "\(descriptor.digest)").status == 404)
        }
    }

    @Test func readsKeepWorkingWhileRedisIsDownAndUseItAgainWhenItReturns() throws {
        let redis = try RedisServer()
        let root = try TemporaryDirectory(prefix: "blobfs-redis-fault")
        defer { root.remove() }
        var configuration = try RedisConfiguration(address: redis.address)
        configuration.retryInterval = 0
        let provider = RedisCacheProvider(configuration: configuration)
        let registry = Registry(driver: try FilesystemDriver(root: root.path), cache: provider)
        let repository = try registry.repository("fault/tolerant")
        let bytes = seededBytes(count: 2048, seed: 62)
        let writer = try repository.blobs.create()
        try writer.write(bytes)
        let descriptor = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: bytes), size: 0))

        redis.stop()
        for _ in 0..<20 {
            #expect(try repository.blobs.stat(descriptor.digest) == descriptor)
            expectSameBytes(try repository.blobs.get(descriptor.digest), bytes)
        }
        let again = try RedisServer(port: redis.port)
        defer { again.stop() }
        #expect(try repository.blobs.stat(descriptor.digest) == descriptor)  // a real miss: written back
        #expect(try again.cli("--raw", "SISMEMBER", "repository::fault/tolerant::blobs", descriptor.digest.description) == "1")
        let statter = try #require(registry.globalStatter as? CachedBlobStatter)
        let hitsBefore = statter.statistics.hits
        _ = try registry.globalStatter.stat(descriptor.digest)
        #expect(statter.statistics.hits == hitsBefore + 1, "the cache is used again")
    }
}
