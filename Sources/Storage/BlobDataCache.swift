import Distribution
import Glibc
import Logging
import StorageDriver
import Synchronization

/// A content-addressed cache of blob data on local disk, for a driver whose files are not local
/// files (S3): a blob's first open fetches its data with parallel ranged reads into a private
/// temporary file, hashes it as it arrives, and publishes it (a rename into
/// `<directory>/<algorithm>/<hh>/<hex>`) only when it hashes to its digest. Every later open is
/// served from that local file: the kernel can read it directly (passthrough), and it needs no
/// second hash. Bounded by `capacity` with least-recently-used eviction that never removes a
/// file any reader (of this daemon or another one on the same directory) holds open.
/// docs/architecture.md, "Blob cache".
///
/// Lock order: `gates` (a leaf, released before a gate is taken) → a gate (held across one
/// blob's fetch: only openers of that same blob wait on it, which is the point: they share the
/// fetch) → `index` (a leaf, never held across I/O). File locks (`flock`) are taken with no
/// lock of ours held: a reader's shared lock on its cache file, an evictor's exclusive one for
/// as long as one `unlink` takes, a fetch's exclusive one on its temporary file.
public final class BlobDataCache: Sendable {
    public let directory: String
    /// Bytes the published files may take together.
    public let capacity: Int64
    let fetch: BlobFetch
    /// Blocks a stream of a blob larger than the cache keeps in memory, at most, per reader.
    let readAheadBlocks: Int
    /// What every block buffer of a stream takes its bytes from, in this process (a fetch holds none).
    public let budget: FetchMemoryBudget
    /// How long a read waits for its block's bytes in the budget before it fails (EIO).
    let budgetWait: Duration
    let logger: Logger
    private let index: Mutex<BlobCacheIndex>
    private let gates = Mutex<[Digest: Gate]>([:])
    /// Names a temporary file apart from other fetches, in this process and in others.
    private let temporaries = Atomic<Int>(0)

    /// One blob's fetch in progress; its lock is held for the whole fetch, and keeps how the
    /// fetch failed, so that openers who waited for it fail the same way instead of each
    /// fetching again (a corrupt object would cost one whole fetch per waiting opener). The gate
    /// leaves the map when its fetch ends: a later open tries again (the storage may be back).
    private final class Gate: Sendable {
        let lock = Mutex<BlobError?>(nil)
        /// Openers that took this gate from the map (the one fetching included).
        let openers = Atomic<Int>(0)
    }

    /// Opens (creating it) the cache at `directory`, removes what a crash or a foreign hand left
    /// there (temporaries no fetch holds, files whose names are not digests), indexes the rest
    /// by size and last use, and evicts down to `capacity`. `blockSize` and `parallelism` shape
    /// the fetch: `parallelism` ranged reads at a time of blocks from `blockSize` up to
    /// `largestBlockSize` bytes, larger for larger blobs (`BlobFetch.blockSize(for:)`; `blockSize` at least
    /// the driver's own read block, so that each is one ranged GET); a blob larger than the cache
    /// streams through `readAheadBlocks` blocks of `blockSize` in memory, each of which takes its bytes
    /// from `budget` first, waiting at most `budgetWait` (the S3 client's default request
    /// deadline: as long as a block's GET may take) for the block a read cannot go on without.
    public init(
        directory: String, capacity: Int64, blockSize: Int = 4 << 20, largestBlockSize: Int = 32 << 20, parallelism: Int = 4,
        readAheadBlocks: Int = 4,
        budget: FetchMemoryBudget = FetchMemoryBudget(), budgetWait: Duration = .seconds(30),
        logger: Logger = Logger(label: "blobfs.cache")
    ) throws(BlobError) {
        self.readAheadBlocks = max(readAheadBlocks, 1)
        self.budget = budget
        self.budgetWait = budgetWait
        Self.returnLargeAllocations
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.directory = trimmed
        self.capacity = max(0, capacity)
        fetch = BlobFetch(blockSize: max(blockSize, 4096), parallelism: max(parallelism, 1), largestBlockSize: largestBlockSize)
        self.logger = logger
        try CacheDirectory.create(trimmed + "/tmp")
        try CacheDirectory.checkPrivate(trimmed)
        var found = BlobCacheIndex()
        CacheDirectory.removeStaleTemporaries(in: trimmed + "/tmp", logger: logger)
        for file in CacheDirectory.scan(trimmed, logger: logger) {
            found.insert(file.digest, size: file.size, lastUse: file.lastUse)
        }
        index = Mutex(found)
        let victims = index.withLock { $0.overflow(capacity: self.capacity) }
        let kept = victims.filter { !evict($0.digest) }
        index.withLock { index in for victim in kept { index.insert(victim.digest, size: victim.entry.size, lastUse: victim.entry.lastUse) } }
        logger.info("blob cache ready", metadata: [
            "directory": "\(trimmed)", "capacity": "\(self.capacity)", "blobs": "\(found.entries.count)",
            "bytes": "\(index.withLock { $0.total })",
        ])
    }

    /// Makes every allocation of 1 MiB or more its own mapping, returned to the system when freed
    /// (glibc otherwise raises that threshold to the largest block freed, after which the
    /// fetch's and the S3 client's multi-MiB buffers, made on many threads, stay in per-thread
    /// malloc arenas: fetching a 256 MiB blob grew the peak RSS by 90 MiB, 27 MiB with one arena).
    /// A mapping costs a page fault per 4 KiB touched, nothing next to a ranged GET; the mount's
    /// read buffers are pooled and never freed.
    /// (`mallopt` is in <malloc.h>, which the Glibc module leaves out: looked up by name.)
    private static let returnLargeAllocations: Void = {
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in glibc's <malloc.h>
        guard let symbol = dlsym(nil, "mallopt") else { return }  // nil: RTLD_DEFAULT
        _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 1 << 20)
    }()

    /// The default size: 10 GiB, or a tenth of the cache directory's filesystem where that is
    /// smaller, so a default cache never fills a small disk (a root filesystem shared with logs
    /// and images) yet holds a few large layers on any real one.
    public static func defaultCapacity(for directory: String) -> Int64 {
        let tenGiB: Int64 = 10 << 30
        var probe = directory
        var fs = statvfs()
        while statvfs(probe, &fs) != 0 {
            guard let slash = probe.lastIndex(of: "/"), probe != "/" else { return tenGiB }
            probe = slash == probe.startIndex ? "/" : String(probe[..<slash])
        }
        let size = Int64(fs.f_blocks) * Int64(fs.f_frsize)
        return size > 0 ? min(tenGiB, size / 10) : tenGiB
    }

    /// What the index holds now: for tests and logs.
    public var usage: (blobs: Int, bytes: Int64) {
        index.withLock { ($0.entries.count, $0.total) }
    }

    /// Whether `digest`'s data is published here now (in this directory, by any daemon).
    public func contains(_ digest: Digest) -> Bool {
        access(path(of: digest), F_OK) == 0
    }

    /// Where `digest`'s published file is.
    public func path(of digest: Digest) -> String {
        "\(directory)/\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)"
    }

    /// Whether opening the blob now would wait for the driver: it is not published here, so its
    /// open fetches it whole first (it fits the cache) or opens a stream with the GET of its
    /// first block (it does not). An open that must not hold its caller's thread for that (a
    /// libfuse worker: a whole blob's transfer, or the S3 client's deadline when the store
    /// stalls) hands such an open to a thread of its own. Only a hint: the blob may be published
    /// or evicted by the time the open runs, which then does what it finds.
    public func opensFromStorage(_ descriptor: Descriptor) -> Bool {
        descriptor.size > 0 && !contains(descriptor.digest)
    }

    /// A reader of the blob's data from its local cache file, fetching and publishing it first
    /// if it is not here: nil when the blob cannot be cached (larger than the whole cache, or
    /// every file that would have to go is open), where the caller reads from the driver. A
    /// fetch whose bytes do not hash to the digest is `invalidDigest` and publishes nothing.
    func reader(for descriptor: Descriptor, driver: any StorageDriver) throws(BlobError) -> DataFileReader? {
        guard descriptor.size <= capacity else { return nil }
        if let reader = try openPublished(descriptor) { return reader }
        let gate = gates.withLock { gates in
            if let gate = gates[descriptor.digest] { return gate }
            let gate = Gate()
            gates[descriptor.digest] = gate
            return gate
        }
        gate.openers.add(1, ordering: .relaxed)
        defer { gates.withLock { if $0[descriptor.digest] === gate { $0[descriptor.digest] = nil } } }
        return try gate.lock.withLock { (failed) throws(BlobError) -> DataFileReader? in
            if let failed { throw failed }
            // A concurrent opener that held the gate first may have published it.
            if let reader = try openPublished(descriptor) { return reader }
            do throws(BlobError) {
                guard try fetchAndPublish(descriptor, driver: driver) else { return nil }
            } catch {
                failed = error
                throw error
            }
            guard let reader = try openPublished(descriptor) else {
                // Evicted by another daemon between the rename and this open: rare, and the
                // driver still serves it.
                return nil
            }
            return reader
        }
    }

    /// How many openers share the fetch of `digest` in progress (0 when none is): for tests that
    /// hold a fetch until every opener waits on it.
    func openersSharingFetch(of digest: Digest) -> Int {
        gates.withLock { $0[digest] }?.openers.load(ordering: .relaxed) ?? 0
    }

    /// Opens the published file of the blob with a shared lock, pinned in the index; nil when
    /// there is none (or it was evicted while this opened it). A file of another size than the
    /// blob's is not the blob: it is removed, and the blob fetched again.
    private func openPublished(_ descriptor: Descriptor) throws(BlobError) -> DataFileReader? {
        let digest = descriptor.digest
        let path = path(of: digest)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .io(operation: "open", path: path, errno: errno)
        }
        // Waits only while an evictor holds the file for one unlink.
        while flock(fd, LOCK_SH) != 0 {
            guard errno == EINTR else {
                let code = errno
                Glibc.close(fd)
                throw .io(operation: "lock", path: path, errno: code)
            }
        }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .io(operation: "stat", path: path, errno: code)
        }
        if st.st_nlink == 0 {
            Glibc.close(fd)  // evicted while this waited for the lock
            index.withLock { _ = $0.remove(digest) }
            return nil
        }
        guard (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) == descriptor.size else {
            Glibc.close(fd)
            logger.warning("a cache file is not its blob's size: removed, the blob is fetched again", metadata: [
                "path": "\(path)", "size": "\(st.st_size)", "expected": "\(descriptor.size)",
            ])
            _ = evict(digest)
            index.withLock { _ = $0.remove(digest) }
            return nil
        }
        let now = Self.now()
        index.withLock { $0.pin(digest, size: descriptor.size, now: now) }
        let file = CacheFileReader(fd: fd, path: path) { [self] in index.withLock { $0.unpin(digest, now: Self.now()) } }
        return DataFileReader(
            descriptor: descriptor, path: PathMapper.path(.blobData(digest)), file: file, verifiedOnArrival: true)
    }

    /// Fetches the blob into a temporary file and publishes it when it hashes to its digest;
    /// false when there is no room for it (nothing fetched).
    private func fetchAndPublish(_ descriptor: Descriptor, driver: any StorageDriver) throws(BlobError) -> Bool {
        let digest = descriptor.digest
        guard let victims = index.withLock({ $0.reserve(descriptor.size, capacity: capacity) }) else {
            logger.info("no room in the blob cache (the files that would go are open): read from storage", metadata: [
                "blob": "\(digest)", "size": "\(descriptor.size)",
            ])
            return false
        }
        defer { index.withLock { $0.release(descriptor.size) } }
        // A victim another daemon holds open stays (and counts again): the cache is over its
        // size until that reader closes, rather than pulling a file from under a reader.
        let kept = victims.filter { !evict($0.digest) }
        if !kept.isEmpty {
            index.withLock { index in for victim in kept { index.insert(victim.digest, size: victim.entry.size, lastUse: victim.entry.lastUse) } }
        }

        let sourcePath = PathMapper.path(.blobData(digest))
        let source: any DriverFileReader
        do throws(StorageDriverError) {
            source = try driver.reader(sourcePath)
        } catch .pathNotFound, .isDirectory {
            throw .dataMissing(digest, path: sourcePath.value)
        } catch {
            throw error.blobError
        }
        let temporary = "\(directory)/tmp/\(digest.hex).\(getpid()).\(temporaries.wrappingAdd(1, ordering: .relaxed).oldValue)"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(operation: "create", path: temporary, errno: errno) }
        defer { Glibc.close(fd) }
        // Held while the file is filled: a daemon starting on this directory removes only
        // temporaries no fetch holds (those a crash left).
        _ = flock(fd, LOCK_EX | LOCK_NB)
        var published = false
        defer { if !published { unlink(temporary) } }
        let arrived = try fetch.fill(
            fd, from: source, size: descriptor.size, digest: digest, sourcePath: sourcePath.value, filePath: temporary)
        guard arrived.digest == digest else {
            logger.error("fetched blob data does not match its name: nothing cached, the open fails", metadata: [
                "blob": "\(digest)", "actual": "\(arrived.digest)", "path": "\(sourcePath.value)",
            ])
            throw .invalidDigest(digest, reason: "its data hashes to \(arrived.digest)")
        }
        // Durable before it is visible: after a power loss a published name holds its bytes.
        guard fsync(fd) == 0 else { throw .io(operation: "fsync", path: temporary, errno: errno) }
        let final = path(of: digest)
        try CacheDirectory.create(String(final[..<final.lastIndex(of: "/")!]))
        guard rename(temporary, final) == 0 else { throw .io(operation: "rename", path: final, errno: errno) }
        published = true
        index.withLock { $0.insert(digest, size: descriptor.size, lastUse: Self.now()) }
        return true
    }

    /// A reader of a blob the cache cannot hold, straight from the driver through a bounded
    /// read-ahead window (`readAheadBlocks` blocks of the fetch's size). Not hashed here: the
    /// filesystem's first read hashes it whole before serving a byte, as it does any data file.
    func streamingReader(for descriptor: Descriptor, driver: any StorageDriver) throws(BlobError) -> DataFileReader {
        let sourcePath = PathMapper.path(.blobData(descriptor.digest))
        let source: any DriverFileReader
        do throws(StorageDriverError) {
            source = try driver.reader(sourcePath)
        } catch .pathNotFound, .isDirectory {
            throw .dataMissing(descriptor.digest, path: sourcePath.value)
        } catch {
            throw error.blobError
        }
        let window = ReadAheadReader(
            base: source, size: descriptor.size, blockSize: fetch.blockSize, window: readAheadBlocks, path: sourcePath.value,
            budget: budget, budgetWait: budgetWait)
        return DataFileReader(descriptor: descriptor, path: sourcePath, file: window, verifiedOnArrival: false)
    }

    /// Removes a published file unless a reader holds it (its shared lock): true when it is gone.
    func evict(_ digest: Digest) -> Bool {
        let path = path(of: digest)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return errno == ENOENT }
        defer { Glibc.close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        // The name may have been published again (another daemon's rename) since the open:
        // unlink only the file this lock is on.
        var held = Glibc.stat()
        var named = Glibc.stat()
        guard fstat(fd, &held) == 0, lstat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev else {
            return false
        }
        guard unlink(path) == 0 || errno == ENOENT else { return false }
        logger.debug("evicted from the blob cache", metadata: ["blob": "\(digest)", "size": "\(held.st_size)"])
        return true
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
