import BlobCache
import Distribution
import Instrumentation

/// The Redis descriptor cache, with the exact key schema of Debian's registry 2.8.2
/// (docs/storage-format.md, Redis keys), so that mounts and registries share one cache:
/// - `blobs::<digest>`: hash `digest`, `size`, `mediatype` (set if absent: first writer wins);
/// - `repository::<name>::blobs`: set of the digests in the repository;
/// - `repository::<name>::blobs::<digest>`: hash `mediatype`, the repository's media type.
/// v3 rules: a missing repository hash field is a miss; a repository clear revokes membership,
/// the repository hash and the global fields in one MULTI/EXEC.
///
/// Every call is one pipelined round trip (an alias's `setDescriptor` is two), each over within
/// `ioTimeout` or failed; a timeout or a broken connection marks Redis down for `retryInterval`
/// (see `RedisConnectionPool`), and callers fall back to storage.
public final class RedisCacheProvider: BlobDescriptorCacheProvider {
    private let pool: RedisConnectionPool

    public init(configuration: RedisConfiguration) {
        pool = RedisConnectionPool(configuration: configuration)
    }

    public var configuration: RedisConfiguration { pool.configuration }

    /// Connects, round trips, failures, and calls skipped while Redis was marked down.
    public var statistics: RedisStatistics { pool.statistics }

    public func stat(_ digest: Digest) throws -> Descriptor {
        try Self.countedLookup {
            let reply = try pool.withConnection { connection throws(RedisError) in
                try connection.command(Self.globalStatCommand(digest))
            }
            return try Self.descriptor(fromGlobal: reply, digest: digest)
        }
    }

    /// Whether Redis is marked down after a failure (lookups skip it until the retry interval ends).
    public var isMarkedDown: Bool { pool.isMarkedDown }

    /// A lookup, counted for the metrics: a descriptor is a hit and `unknown` a miss; a failure
    /// is neither (`blobfs_redis_errors_total` counts those).
    fileprivate static func countedLookup(_ lookup: () throws -> Descriptor) throws -> Descriptor {
        do {
            let descriptor = try lookup()
            BlobfsMetrics.current?.redisCacheHits.increment()
            return descriptor
        } catch {
            if case BlobError.unknown? = error as? BlobError { BlobfsMetrics.current?.redisCacheMisses.increment() }
            throw error
        }
    }

    public func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws {
        try descriptor.validate()
        try run(Self.globalSetCommands(digest, descriptor))
    }

    public func clear(_ digest: Digest) throws {
        let reply = try pool.withConnection { connection throws(RedisError) in
            try connection.command(["HDEL", Self.globalKey(digest), "digest", "size", "mediatype"])
        }
        try Self.check(reply, "HDEL")
        if reply.integer == 0 { throw BlobError.unknown(digest) }
    }

    public func repositoryScoped(_ name: RepositoryName) throws(BlobError) -> any BlobDescriptorCache {
        RepositoryScope(provider: self, repository: name)
    }

    /// Runs commands in one round trip, failing on the first error reply.
    fileprivate func run(_ commands: [[String]]) throws {
        let replies = try pool.withConnection { connection throws(RedisError) in try connection.pipeline(commands) }
        for (command, reply) in zip(commands, replies) { try Self.check(reply, command[0]) }
    }

    fileprivate func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        try pool.withConnection { connection throws(RedisError) in try connection.pipeline(commands) }
    }

    // MARK: - Key schema

    static func globalKey(_ digest: Digest) -> String { "blobs::\(digest)" }
    static func membershipKey(_ name: RepositoryName) -> String { "repository::\(name)::blobs" }
    static func repositoryKey(_ name: RepositoryName, _ digest: Digest) -> String { "repository::\(name)::blobs::\(digest)" }

    static func globalStatCommand(_ digest: Digest) -> [String] {
        ["HMGET", globalKey(digest), "digest", "size", "mediatype"]
    }

    static func globalSetCommands(_ digest: Digest, _ descriptor: Descriptor) -> [[String]] {
        [
            ["HSET", globalKey(digest), "digest", descriptor.digest.description, "size", String(descriptor.size)],
            ["HSETNX", globalKey(digest), "mediatype", descriptor.mediaType],
        ]
    }

    /// `HMGET digest size mediatype` → a descriptor; a missing `digest` or `size` is a miss (old
    /// entries with `length` instead of `size` read as misses and are rewritten).
    static func descriptor(fromGlobal reply: RedisReply, digest: Digest) throws -> Descriptor {
        try check(reply, "HMGET")
        guard case .array(let fields) = reply, fields.count == 3 else {
            throw RedisError.corruptEntry(key: globalKey(digest), reason: "unexpected reply \(reply)")
        }
        guard let digestText = fields[0].string, let sizeText = fields[1].string else { throw BlobError.unknown(digest) }
        guard let canonical = try? Digest(parsing: digestText) else {
            throw RedisError.corruptEntry(key: globalKey(digest), reason: "digest \(digestText.debugDescription)")
        }
        guard let size = Int64(sizeText), size >= 0 else {
            throw RedisError.corruptEntry(key: globalKey(digest), reason: "size \(sizeText.debugDescription)")
        }
        return Descriptor(digest: canonical, size: size, mediaType: fields[2].string ?? "")
    }

    static func check(_ reply: RedisReply, _ command: String) throws {
        if case .error(let message) = reply { throw RedisError.reply(command: command, message: message) }
    }

    /// One repository's view.
    private struct RepositoryScope: BlobDescriptorCache {
        let provider: RedisCacheProvider
        let repository: RepositoryName

        /// Membership, the global descriptor and the repository media type, in one round trip.
        func stat(_ digest: Digest) throws -> Descriptor {
            try RedisCacheProvider.countedLookup { try lookup(digest) }
        }

        private func lookup(_ digest: Digest) throws -> Descriptor {
            let replies = try provider.pipeline([
                ["SISMEMBER", RedisCacheProvider.membershipKey(repository), digest.description],
                RedisCacheProvider.globalStatCommand(digest),
                ["HGET", RedisCacheProvider.repositoryKey(repository, digest), "mediatype"],
            ])
            try RedisCacheProvider.check(replies[0], "SISMEMBER")
            guard replies[0].integer == 1 else { throw BlobError.unknown(digest) }
            var descriptor = try RedisCacheProvider.descriptor(fromGlobal: replies[1], digest: digest)
            try RedisCacheProvider.check(replies[2], "HGET")
            guard let mediaType = replies[2].string else { throw BlobError.unknown(digest) }
            if !mediaType.isEmpty { descriptor.mediaType = mediaType }
            return descriptor
        }

        func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws {
            try descriptor.validate()
            if digest != descriptor.digest && digest.algorithm == descriptor.digest.algorithm {
                throw BlobError.invalidDescriptor("digest for descriptors differ but algorithm does not: \(digest) vs \(descriptor.digest)")
            }
            try provider.run(
                [["SADD", RedisCacheProvider.membershipKey(repository), digest.description]]
                    + RedisCacheProvider.globalSetCommands(digest, descriptor)
                    + [["HSET", RedisCacheProvider.repositoryKey(repository, digest), "mediatype", descriptor.mediaType]])
            // An alias also makes the canonical digest a member, with its own entries.
            if digest.algorithm != descriptor.digest.algorithm {
                try setDescriptor(descriptor.digest, descriptor)
            }
        }

        /// Revokes membership, the repository hash and the global fields atomically.
        func clear(_ digest: Digest) throws {
            let replies = try provider.pipeline([
                ["MULTI"],
                ["SREM", RedisCacheProvider.membershipKey(repository), digest.description],
                ["DEL", RedisCacheProvider.repositoryKey(repository, digest)],
                ["HDEL", RedisCacheProvider.globalKey(digest), "digest", "size", "mediatype"],
                ["EXEC"],
            ])
            for reply in replies { try RedisCacheProvider.check(reply, "MULTI/EXEC") }
            guard case .array = replies[4] else {
                throw RedisError.reply(command: "EXEC", message: "transaction aborted")
            }
        }
    }
}
