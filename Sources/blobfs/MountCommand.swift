import ArgumentParser
import BlobCache
import BlobCacheRedis
import BlobFS
import Glibc
import Logging
import Scrubber
import Storage
import StorageDriver

/// `blobfs mount`: mounts a registry's storage (read-only by default) and serves it in the foreground until it
/// is unmounted or gets SIGINT/SIGTERM (then it unmounts and exits 0).
struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a registry's storage (read-only by default) and serve it in the foreground.",
        usage: """
            blobfs mount <storage-root> <mountpoint> [<options>]
            blobfs mount s3://<bucket>/<rootdirectory> <mountpoint> [--s3-endpoint <url>] [<options>]
            blobfs mount --config <config.yml> <mountpoint> [<options>]
            """,
        discussion: """
            Serves <mountpoint>/repo/<name>/blobs/<digest> until unmounted (umount, \
            fusermount3 -u) or stopped with SIGINT or SIGTERM, which unmount and exit 0. Logs go \
            to standard error.

            MOUNT OPTIONS (-o, comma-separated, repeatable)
              ro                    read-only: the default
              rw                    as --read-write
              allow_delete          as --allow-delete
              oci                   as --oci
              no_hard_links         as --no-hard-links
              hard_links            as --hard-links (the default)
              config=<file>         as --config
              cache_entries=<n>     as --cache-entries
              blob_timeout=<s>      as --blob-timeout
              dir_timeout=<s>       as --dir-timeout
              negative_timeout=<s>  as --negative-timeout
              no_verify             as --no-verify
              remember_verified=<f> as --remember-verified
              threads=<n>           as --threads
              passthrough=auto|off  as --passthrough
              log_level=<level>     as --log-level
              log=<file>            append the log to <file>, not standard error
              metrics_address=<a>   as --metrics-address
              s3_endpoint=<url>     as --s3-endpoint
              s3_region=<region>    as --s3-region
              s3_credentials_file=<file>  as --s3-credentials-file
              Passed to libfuse: allow_other, allow_root, default_permissions,
                auto_unmount, nosuid, nodev, noexec, noatime, nodiratime, sync,
                dirsync, fsname=, subtype=, debug.
              Ignored (fstab and mount(8) options): defaults, auto, noauto, user,
                nofail, _netdev, dev, suid, exec, x-systemd.*, comment=, …
            A flag wins over the same -o option, which wins over --config.
            """
    )

    static let defaultCacheEntries = 10_000

    @Argument(
        help: ArgumentHelp(
            "The registry's storage root: the directory that holds docker/registry/v2, or s3://<bucket>/<rootdirectory> "
                + "for a registry on S3. With --config it can be left out.",
            valueName: "storage-root"))
    var first: String

    @Argument(help: ArgumentHelp("An existing directory to mount on.", valueName: "mountpoint"))
    var second: String?

    @Option(
        name: .customShort("o"), help: ArgumentHelp("Mount options, comma-separated (see MOUNT OPTIONS).", valueName: "options"))
    var options: [String] = []

    @Option(
        help: ArgumentHelp(
            "The registry's config.yml: the storage root (storage.filesystem.rootdirectory, or storage.s3 with its "
                + "bucket, rootdirectory, region, regionendpoint and keys) and the descriptor cache (storage.cache).",
            valueName: "config.yml"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "Blob descriptors cached in memory; 0 for none. (default: 10000, or storage.cache.blobdescriptorsize)", valueName: "n"
        ))
    var cacheEntries: Int?

    @Option(
        help: ArgumentHelp(
            "Seconds the kernel caches a blob file's entry and attributes; a repository may stop linking a blob, and an open checks the link in any case. (default: 60)",
            valueName: "seconds"))
    var blobTimeout: Double?

    @Option(
        name: .customLong("dir-timeout"),
        help: ArgumentHelp(
            "Seconds the kernel caches a directory's entry and attributes; a live registry adds blobs. (default: 1)",
            valueName: "seconds"))
    var directoryTimeout: Double?

    @Option(help: ArgumentHelp("Seconds the kernel remembers that a name does not exist. (default: 1)", valueName: "seconds"))
    var negativeTimeout: Double?

    @Flag(
        help: ArgumentHelp(
            "Do not check blobs against their digests. By default the first read of a blob hashes "
                + "it, and a blob whose bytes do not match its digest fails every read with EIO."
        ))
    var noVerify = false

    @Option(
        help: ArgumentHelp(
            "Remember in <file> which blobs were verified, and trust them in later mounts while their data file "
                + "is unchanged (same device, inode, size, modification and change time), instead of hashing them "
                + "again. Bit rot changes none of these: run blobfs verify with the same option now and then. "
                + "The file must belong to the daemon's user and be writable by nobody else.",
            valueName: "file"))
    var rememberVerified: String?

    @Option(
        help: ArgumentHelp(
            "Where blobs of remote storage (S3) are kept once fetched and verified, shared by every mount on the host. "
                + "(default: /var/cache/blobfs as root, else ~/.cache/blobfs)",
            valueName: "directory"))
    var cacheDir: String?

    @Option(
        help: ArgumentHelp(
            "The blob cache's size: bytes with an optional K, M, G or T suffix, or a percentage of its filesystem; "
                + "the least recently used blobs no one has open go first. (default: 10G, or 10% of the filesystem if less)",
            valueName: "size"))
    var cacheSize: String?

    @Option(
        help: ArgumentHelp(
            "Share the registry's Redis descriptor cache at <host:port> instead of caching in memory. "
                + "(default: redis.addr when the registry configuration uses a Redis cache)",
            valueName: "host:port"))
    var redis: String?

    @Option(help: ArgumentHelp("The Redis database number, 0 to 2147483647. (default: 0, or redis.db)", valueName: "n"))
    var redisDb: Int?

    @Option(
        help: ArgumentHelp(
            "A file whose first line is the Redis password: a regular file of the daemon's user that nobody else can "
                + "read or write, at most 4096 bytes. Needs a Redis cache (--redis or --config).",
            valueName: "file"))
    var redisPasswordFile: String?

    @Option(
        help: ArgumentHelp(
            "Seconds Redis is left alone after a timeout or a failed connection: lookups read from storage "
                + "meanwhile, then one tries Redis again. (default: 1)",
            valueName: "seconds"))
    var redisRetryInterval: Double?

    @Flag(
        help: ArgumentHelp(
            "Accept writes: files written to repo/<name>/blobs/<digest> are verified against the digest and committed "
                + "as the registry commits uploads; mkdir creates repositories."))
    var readWrite = false

    @Flag(help: ArgumentHelp("With --read-write, let unlink remove a repository's link to a blob (the data stays, as in the registry)."))
    var allowDelete = false

    @Flag(help: ArgumentHelp("Also show <mountpoint>/oci/<name>/: each repository as a read-only OCI image layout (oci-layout, index.json of its tags, blobs/<alg>/<hex>), for skopeo and umoci."))
    var oci = false

    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Show a blob linked in several repositories as hard links (one inode number, st_nlink its names), so that "
                + "rsync -aH, cp -a, tar and du keep it once: the default, which counts every repository's links as the "
                + "mount starts. --no-hard-links shows each name as a file of its own (st_nlink 1). (default: --hard-links)"))
    var hardLinks: Bool?

    @OptionGroup(title: "S3 options")
    var s3: S3StoreOptions

    @Option(help: ArgumentHelp("libfuse worker threads at most. (default: 10)", valueName: "n"))
    var threads: Int?

    @Option(
        help: ArgumentHelp(
            "auto: where the kernel has FUSE passthrough (Linux 6.9 or later) and the daemon runs as root, the "
                + "kernel reads verified blobs straight from their data files; off: the daemon serves every read. "
                + "The startup line says which. (default: auto)",
            valueName: "auto|off"))
    var passthrough: PassthroughMode?

    @Option(help: ArgumentHelp("How much to log. (default: info)", valueName: "level"))
    var logLevel: LogLevelArgument?

    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://<address>/metrics: an IPv4 address and port (127.0.0.1:9464) or "
                + "[IPv6]:port, bound exactly as given. (default: no metrics)",
            valueName: "ip:port"))
    var metricsAddress: String?

    /// `-f`, as FUSE programs spell "foreground": accepted, and what `blobfs mount` always does.
    @Flag(name: .customShort("f"), help: .hidden)
    var foreground = false

    /// Set by the mount.fuse form: write one byte on this descriptor once the mount is up.
    @Option(help: .hidden)
    var readyFd: Int32?

    func run() throws {
        let readiness = readyFd.map(ReadinessPipe.init)
        if readiness != nil { _ = chdir("/") }  // a daemon must not keep a directory busy
        do {
            try mount(readiness)
        } catch {
            throw CommandFailure(error)
        }
    }

    private func mount(_ readiness: ReadinessPipe?) throws {
        let list = try MountOptionList(parsing: options)
        let readWrite = self.readWrite || list.readWrite
        let allowDelete = self.allowDelete || list.allowDelete
        if allowDelete && !readWrite { throw CommandFailure.usage("--allow-delete needs a read-write mount (--read-write or -o rw)") }
        bootstrapLogging(level: logLevel?.level ?? list.logLevel ?? .info)
        let logger = Logger(label: "blobfs")
        let descriptors = DescriptorLimit.raiseToHard()
        logger.debug("open-file limit", metadata: ["nofile": "\(descriptors)"])
        if !list.ignored.isEmpty {
            logger.debug("ignoring mount(8) options", metadata: ["options": "\(list.ignored.joined(separator: ","))"])
        }

        let configPath = config ?? list.configPath
        let registryConfiguration = try configPath.map { try RegistryConfiguration.load(path: $0) }
        let rootArgument = second == nil ? nil : first
        let mountpointArgument = second ?? first
        let settings = try resolveSettings(list, registryConfiguration, logger)
        let store: Preflight.Store
        if rootArgument.map(S3StoreSettings.isS3) ?? (registryConfiguration?.s3 != nil) {
            store = try Preflight.store(rootArgument, s3: s3.overlaid(on: list), configuration: registryConfiguration, acceptsEmpty: readWrite)
        } else {
            guard let rootPath = rootArgument ?? registryConfiguration?.rootDirectory else {
                throw CommandFailure.usage("give the storage root, or --config with the registry's config.yml, before the mountpoint")
            }
            if s3.overlaid(on: list).anySet { throw CommandFailure.usage("the S3 options need an s3:// store") }
            // A configuration without rootdirectory means the registry's default, which may well not
            // be where the store is: say so, and say it again if that directory is no store.
            let defaultedRoot = rootArgument == nil && registryConfiguration?.rootDirectoryIsDefault == true
            let defaultNote = "\(configPath ?? "the configuration") sets no storage.filesystem.rootdirectory: \(rootPath) is the registry's default"
            do {
                store = try Preflight.store(rootPath, acceptsEmpty: readWrite)
            } catch {
                throw defaultedRoot ? CommandFailure("\(error.message) (\(defaultNote))", exitCode: error.exitCode) : error
            }
            if defaultedRoot { logger.notice("\(defaultNote)") }
        }
        let mountpoint = try Preflight.mountpoint(mountpointArgument, store: store)
        try Preflight.fuseDevice()
        if store.isFresh { try Preflight.create(store, logger: logger) }
        // Opened now so that a bad path fails before the mount; used once the mount is up, so that
        // until then every error still reaches the terminal (or the parent, in the background).
        let logFD = try list.logFile.map { try Self.openLog($0) } ?? (readiness != nil ? Self.openLog("/dev/null") : nil)
        // The stop signals are FuseSession.run's to set up (docs/architecture.md, "Mounting and
        // signals"); SIGPIPE is the command's: a closed log pipe is EPIPE, not death.
        signal(SIGPIPE, SIG_IGN)

        let cache: (any BlobDescriptorCacheProvider)?
        if let redis = settings.redis {
            cache = RedisCacheProvider(configuration: redis)
        } else {
            cache = settings.cacheEntries > 0 ? InMemoryCacheProvider(capacity: settings.cacheEntries) : nil
        }
        // Metrics (--metrics-address, off by default): on before anything is counted.
        let metrics = try MountMetrics(address: metricsAddress ?? list.metricsAddress)
        // On S3 a directory exists only while a key lies below it: what this mount makes stays
        // visible to it until its first file is written (MadeDirectoriesDriver).
        let storeDriver: any StorageDriver = readWrite && !store.isLocal ? MadeDirectoriesDriver(store.driver) : store.driver
        let driver = metrics?.instrumenting(storeDriver) ?? storeDriver
        // A remote store's blobs are read through the local verified cache (BlobDataCache).
        let dataCache = try BlobCacheSettings(directory: cacheDir, size: cacheSize, options: list).cache(storageIsLocal: store.isLocal, logger: logger)
        let registry = Registry(driver: driver, cache: cache, deleteEnabled: allowDelete, dataCache: dataCache, logger: Logger(label: "blobfs.storage"))
        var mountOptions = MountOptions(storageRoot: store.root)
        mountOptions.fuseOptions = list.fuseOptions
        mountOptions.blobTimeout = settings.blobTimeout
        mountOptions.directoryTimeout = settings.directoryTimeout
        mountOptions.negativeTimeout = settings.negativeTimeout
        mountOptions.verifyReads = settings.verifyReads
        mountOptions.maxThreads = settings.threads
        mountOptions.readWrite = readWrite
        mountOptions.allowDelete = allowDelete
        mountOptions.ociView = oci || list.ociView
        mountOptions.hardLinks = hardLinks ?? list.hardLinks ?? mountOptions.hardLinks
        // The kernel can only pass reads through to a file of this machine: a local store's data
        // files, or a remote store's blobs in the local cache.
        let readsLocalFiles = store.isLocal || dataCache != nil
        mountOptions.passthrough = readsLocalFiles ? passthrough ?? list.passthrough ?? .auto : .off
        let ledger: VerificationLedger?
        do {
            ledger = try (rememberVerified ?? list.ledgerPath).map { try VerificationLedger(path: $0) }
        } catch {
            throw CommandFailure("\(error)")
        }
        if let ledger, !settings.verifyReads {
            logger.warning("--remember-verified has no effect with --no-verify", metadata: ["ledger": "\(ledger.path)"])
        }
        let fileSystem = BlobFileSystem(registry: registry, options: mountOptions, ledger: ledger, logger: Logger(label: "blobfs.fs"))
        // Before mounting, so that the count of shared blobs' names is under way when the first
        // `stat` comes (measured: docs/architecture.md, "Inodes").
        fileSystem.startLinkCensus()

        let metricsServer = try metrics?.serve(fileSystem, redis: cache as? RedisCacheProvider)
        defer { metricsServer?.shutdown() }

        let session: FuseSession
        do {
            session = try FuseSession(fileSystem: fileSystem, mountpoint: mountpoint)
        } catch let error as MountError {
            throw CommandFailure(error.description)
        }
        if let logFD {
            dup2(logFD, 2)
            close(logFD)
        }
        readiness?.ready()
        let metadata: Logger.Metadata = [
            "cache": "\(settings.redis.map { "redis \($0.address) db \($0.database)" } ?? "in memory, \(settings.cacheEntries) entries")",
            "verify": "\(settings.verifyReads)\(ledger.map { ", remembered in \($0.path) (\($0.count) blobs)" } ?? "")",
            "threads": "\(settings.threads)",
            "fuse_options": "\(list.fuseOptions.joined(separator: ","))",
            "metrics": "\(metricsServer?.url ?? "off")",
        ]
        let mode = "\(readWrite ? "read-write" : "read-only")\(allowDelete ? ", deletes allowed" : "")"
        let mounted = "mounted \(store.root) at \(mountpoint), \(mode)"
        // systemd's side (Type=notify): what the unit's status shows, each part as the startup line says it.
        let service = ServiceNotifications(logger: logger)
        let verification = settings.verifyReads ? (ledger.map { "on, remembered in \($0.path)" } ?? "on") : "off"
        let cacheStatus =
            settings.redis.map { "Redis \($0.address) db \($0.database)" }
            ?? (settings.cacheEntries > 0 ? "memory, \(settings.cacheEntries) entries" : "none")
        let servedStatus = "serving \(store.root) at \(mountpoint); \(mode); verification: \(verification); cache: \(cacheStatus)"
        // Said once the kernel's INIT exchange is done: only then is it known whether the kernel
        // reads blobs directly.
        try session.run(
            serving: { offered in
                let passthrough = readsLocalFiles ? offered : "off (the store is not a local filesystem)"
                logger.info("\(mounted); passthrough: \(passthrough)", metadata: metadata)
                service.serving(mountpoint: mountpoint, status: "\(servedStatus); passthrough: \(passthrough)")
            },
            stopping: { service.stopping(mountpoint: mountpoint) })
        logger.info("unmounted \(mountpoint)")
    }

    /// The settings after flags, then `-o`, then the registry configuration, then the defaults.
    struct Settings {
        var cacheEntries: Int
        var blobTimeout: Double
        var directoryTimeout: Double
        var negativeTimeout: Double
        var verifyReads: Bool
        var threads: Int
        /// The shared Redis cache, when one is configured.
        var redis: RedisConfiguration?
    }

    private func resolveSettings(_ list: MountOptionList, _ configuration: RegistryConfiguration?, _ logger: Logger)
        throws(CommandFailure)
        -> Settings
    {
        let defaults = MountOptions(storageRoot: "")
        var cacheEntries = Self.defaultCacheEntries
        switch configuration?.cache {
        case .inMemory(let size)?:
            cacheEntries = size ?? cacheEntries
        case .redis(let size)?:
            cacheEntries = size ?? cacheEntries
            if configuration?.redis == nil && redis == nil {
                logger.warning("the registry configuration names a Redis cache but no redis.addr: using an in-memory cache")
            }
        case .other(let name)?:
            logger.warning(
                "unknown blob descriptor cache in the registry configuration: using an in-memory cache",
                metadata: ["cache": "\(name)"])
        case nil:
            break
        }
        var redisConfiguration: RedisConfiguration?
        let configuredRedis: RegistryConfiguration.RedisSection? =
            if case .redis? = configuration?.cache { configuration?.redis } else { nil }
        if let address = redis ?? configuredRedis?.address {
            var parsed: RedisConfiguration
            do { parsed = try RedisConfiguration(address: address) } catch { throw .usage("--redis: \(error)") }
            parsed.database = redisDb ?? configuredRedis?.database ?? 0
            parsed.password = configuredRedis?.password
            if let file = redisPasswordFile { parsed.password = try RedisPasswordFile.read(file) }
            if let seconds = configuredRedis?.dialTimeout { parsed.connectTimeout = seconds }
            if let seconds = configuredRedis?.readTimeout { parsed.ioTimeout = seconds }
            if let seconds = redisRetryInterval { parsed.retryInterval = seconds }
            redisConfiguration = parsed
        }
        guard redisConfiguration != nil || redisPasswordFile == nil else {
            // Silently ignoring a secret would hide a mount that was meant to use Redis.
            throw .usage(
                "--redis-password-file needs a Redis cache: --redis <host:port>, or --config with "
                    + "storage.cache.blobdescriptor: redis and redis.addr")
        }
        guard (0...RegistryConfiguration.maxRedisDatabase).contains(redisDb ?? 0) else {
            throw .usage("--redis-db must be a database number from 0 to \(RegistryConfiguration.maxRedisDatabase)")
        }
        if let seconds = redisRetryInterval, !(seconds.isFinite && seconds >= 0) {
            throw .usage("--redis-retry-interval must be a number of seconds, 0 or more")
        }
        let settings = Settings(
            cacheEntries: self.cacheEntries ?? list.cacheEntries ?? cacheEntries,
            blobTimeout: blobTimeout ?? list.blobTimeout ?? defaults.blobTimeout,
            directoryTimeout: directoryTimeout ?? list.directoryTimeout ?? defaults.directoryTimeout,
            negativeTimeout: negativeTimeout ?? list.negativeTimeout ?? defaults.negativeTimeout,
            verifyReads: noVerify ? false : list.verifyReads ?? defaults.verifyReads,
            threads: threads ?? list.threads ?? defaults.maxThreads,
            redis: redisConfiguration)
        guard settings.cacheEntries >= 0 else { throw .usage("--cache-entries must be 0 or more") }
        guard settings.threads >= 1 else { throw .usage("--threads must be 1 or more") }
        for (name, value) in [
            ("--blob-timeout", settings.blobTimeout), ("--dir-timeout", settings.directoryTimeout),
            ("--negative-timeout", settings.negativeTimeout),
        ] where !(value.isFinite && value >= 0) {
            throw .usage("\(name) must be a number of seconds, 0 or more")
        }
        return settings
    }

    /// `log=<file>`, opened for appending; it becomes standard error once the mount is up.
    /// A symbolic link is refused, as for the ledger: a daemon running as root must not append
    /// to whatever file a link in a shared directory points to.
    private static func openLog(_ path: String) throws(CommandFailure) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            let code = errno
            throw CommandFailure(
                code == ELOOP
                    ? "refusing the log file \(path): it is a symbolic link (give the file it points to)"
                    : "cannot open the log file \(path): \(systemError(code))")
        }
        return fd
    }
}

extension PassthroughMode: ExpressibleByArgument {}
