import CoreMetrics
import Glibc
import Synchronization

/// Every metric a mount reports (`--metrics-address`), created once, through swift-metrics, when
/// metrics are turned on; README.md lists them, docs/architecture.md ("Metrics") says where each
/// is counted. With metrics off (the default) nothing here exists: `current` is nil, and each
/// counting point costs one atomic load and a branch that is always taken the same way.
///
/// Hot paths never create or look up a metric object by name: the FUSE counters and histograms
/// are made for every operation up front and found by the operation's index; only an error
/// reply's counter (one per operation and errno that actually happened) is made on first use,
/// in `errorCounters` — an error path, where one lock is cheap next to the failure itself.
///
/// Locks: `errorCounters` is a leaf, held only to find or add one counter (never across I/O,
/// never while another lock is taken). The metric objects' own locks (a histogram's) are leaves
/// inside swift-prometheus.
public final class BlobfsMetrics: Sendable {
    // MARK: - The names (Prometheus conventions: `blobfs_` prefix, base units, `_total` counters)

    /// Name, type and help text of every family, in the order the README lists them.
    public static let families: [(name: String, type: String, help: String)] = [
        ("blobfs_build_info", "gauge", "Always 1; the version label says which blobfs serves the mount."),
        ("blobfs_fuse_requests_total", "counter", "FUSE requests answered, by operation and result (ok, or the errno name replied)."),
        ("blobfs_fuse_request_duration_seconds", "histogram", "Time from receiving a FUSE request to handing its reply to the kernel, by operation."),
        ("blobfs_served_bytes_total", "counter", "Bytes the daemon answered read requests with (passthrough reads never reach the daemon)."),
        ("blobfs_opens_total", "counter", "Blob opens answered, by who serves the file's reads: passthrough (the kernel) or daemon."),
        ("blobfs_hashed_bytes_total", "counter", "Bytes hashed to verify blobs at their first read."),
        ("blobfs_blobs_verified_total", "counter", "Blobs hashed at their first read in a data file version (intact or not)."),
        ("blobfs_verification_failures_total", "counter", "Blobs whose bytes did not match their digest at their first read."),
        ("blobfs_ledger_hits_total", "counter", "Times the verification ledger vouched for a blob, sparing a hash."),
        ("blobfs_descriptor_cache_hits_total", "counter", "Blob descriptor cache lookups that found the digest, by cache (memory, redis)."),
        ("blobfs_descriptor_cache_misses_total", "counter", "Blob descriptor cache lookups that did not find the digest, by cache (memory, redis)."),
        ("blobfs_redis_errors_total", "counter", "Redis timeouts and connection failures (each marks Redis down for the retry interval)."),
        ("blobfs_redis_up", "gauge", "1 while Redis is in use, 0 while it is marked down after a failure."),
        ("blobfs_uploads_committed_total", "counter", "Uploads verified against their digest and stored as blobs."),
        ("blobfs_uploads_cancelled_total", "counter", "Uploads abandoned before their commit (unlink, unmount, never matched)."),
        ("blobfs_uploads_refused_total", "counter", "Uploads whose commit was refused, by reason."),
        ("blobfs_uploads_in_progress", "gauge", "Files being written (read-write mounts)."),
        ("blobfs_inodes", "gauge", "Inodes the daemon holds for the kernel."),
        ("blobfs_open_handles", "gauge", "Open files and directories (file handles the kernel holds)."),
        ("blobfs_storage_requests_total", "counter", "Storage driver calls, by driver operation."),
        ("blobfs_storage_errors_total", "counter", "Storage driver calls that failed, by driver operation (a path that does not exist is not a failure)."),
        ("blobfs_storage_request_duration_seconds", "histogram", "Time a storage driver call took, by driver operation."),
    ]

    /// Histogram buckets of both duration families, in seconds: a FUSE request answered from
    /// memory takes microseconds, a first read that hashes a large blob or a slow remote driver
    /// seconds.
    public static let durationBuckets: [Double] = [
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25, 0.5, 1, 2.5, 5, 10,
    ]

    /// The families recorded as seconds into `durationBuckets`.
    public static let durationFamilies: Set<String> = [
        "blobfs_fuse_request_duration_seconds", "blobfs_storage_request_duration_seconds",
    ]

    // MARK: - The objects

    private let factory: any MetricsFactory
    public let buildInfo: Gauge
    private let fuseOK: [Counter]
    /// Durations are `Recorder`s of seconds (a histogram of doubles), not swift-metrics `Timer`s:
    /// swift-prometheus's histogram of `Duration` compares bucket bounds through generic
    /// `Duration` arithmetic, measured at 3 to 4 times the cost per observation (250 against
    /// 80 ns here), and a lookup records several.
    private let fuseDurations: [Recorder]
    private let errorCounters = Mutex<[Int: Counter]>([:])
    public let servedBytes: Counter
    public let passthroughOpens: Counter
    public let daemonOpens: Counter
    public let hashedBytes: Counter
    public let blobsVerified: Counter
    public let verificationFailures: Counter
    public let ledgerHits: Counter
    public let memoryCacheHits: Counter
    public let memoryCacheMisses: Counter
    public let redisCacheHits: Counter
    public let redisCacheMisses: Counter
    public let redisErrors: Counter
    public let redisUp: Meter
    public let uploadsCommitted: Counter
    public let uploadsCancelled: Counter
    private let uploadsRefused: [UploadRefusal: Counter]
    public let uploadsInProgress: Meter
    public let inodes: Meter
    public let openHandles: Meter
    private let storageRequests: [Counter]
    private let storageErrors: [Counter]
    private let storageDurations: [Recorder]

    /// Creates every metric object through `factory` (swift-prometheus's, in the daemon).
    public init(version: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: name, dimensions: dimensions, factory: factory)
        }
        func meter(_ name: String) -> Meter { Meter(label: name, dimensions: [], factory: factory) }
        buildInfo = Gauge(label: "blobfs_build_info", dimensions: [("version", version)], factory: factory)
        buildInfo.record(1)
        fuseOK = FuseOperation.allCases.map {
            counter("blobfs_fuse_requests_total", [("operation", "\($0)"), ("result", "ok")])
        }
        fuseDurations = FuseOperation.allCases.map {
            Recorder(label: "blobfs_fuse_request_duration_seconds", dimensions: [("operation", "\($0)")], aggregate: true, factory: factory)
        }
        servedBytes = counter("blobfs_served_bytes_total")
        passthroughOpens = counter("blobfs_opens_total", [("served_by", "passthrough")])
        daemonOpens = counter("blobfs_opens_total", [("served_by", "daemon")])
        hashedBytes = counter("blobfs_hashed_bytes_total")
        blobsVerified = counter("blobfs_blobs_verified_total")
        verificationFailures = counter("blobfs_verification_failures_total")
        ledgerHits = counter("blobfs_ledger_hits_total")
        memoryCacheHits = counter("blobfs_descriptor_cache_hits_total", [("cache", "memory")])
        memoryCacheMisses = counter("blobfs_descriptor_cache_misses_total", [("cache", "memory")])
        redisCacheHits = counter("blobfs_descriptor_cache_hits_total", [("cache", "redis")])
        redisCacheMisses = counter("blobfs_descriptor_cache_misses_total", [("cache", "redis")])
        redisErrors = counter("blobfs_redis_errors_total")
        redisUp = meter("blobfs_redis_up")
        uploadsCommitted = counter("blobfs_uploads_committed_total")
        uploadsCancelled = counter("blobfs_uploads_cancelled_total")
        uploadsRefused = Dictionary(uniqueKeysWithValues: UploadRefusal.allCases.map {
            ($0, counter("blobfs_uploads_refused_total", [("reason", $0.rawValue)]))
        })
        uploadsInProgress = meter("blobfs_uploads_in_progress")
        inodes = meter("blobfs_inodes")
        openHandles = meter("blobfs_open_handles")
        storageRequests = StorageOperation.allCases.map { counter("blobfs_storage_requests_total", [("operation", $0.rawValue)]) }
        storageErrors = StorageOperation.allCases.map { counter("blobfs_storage_errors_total", [("operation", $0.rawValue)]) }
        storageDurations = StorageOperation.allCases.map {
            Recorder(label: "blobfs_storage_request_duration_seconds", dimensions: [("operation", $0.rawValue)], aggregate: true, factory: factory)
        }
    }

    // MARK: - The one instance of the process

    /// Set once, before the mount starts, and never cleared: a plain atomic pointer, so that a
    /// counting point reads it without a lock and without touching a reference count.
    private static let installed = Atomic<Unmanaged<BlobfsMetrics>?>(nil)

    /// The process's metrics; nil when metrics are off.
    @inline(__always)
    public static var current: BlobfsMetrics? {
        installed.load(ordering: .acquiring)?.takeUnretainedValue()
    }

    /// Makes `metrics` the process's for good (the reference is kept for the life of the
    /// process). False if another was installed first.
    @discardableResult
    public static func install(_ metrics: BlobfsMetrics) -> Bool {
        let retained = Unmanaged.passRetained(metrics)
        guard installed.compareExchange(expected: nil, desired: retained, ordering: .acquiringAndReleasing).exchanged else {
            retained.release()
            return false
        }
        return true
    }

    // MARK: - Counting

    /// Monotonic nanoseconds, for durations.
    @inline(__always)
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    @inline(__always)
    static func seconds(since started: UInt64) -> Double {
        Double(Self.now() &- started) / 1_000_000_000
    }

    /// A FUSE request answered with `errno` (0 for success), received at `started`.
    public func replied(_ operation: FuseOperation, started: UInt64, errno code: Int32) {
        fuseDurations[operation.rawValue].record(Self.seconds(since: started))
        if code == 0 {
            fuseOK[operation.rawValue].increment()
        } else {
            errorCounter(operation, code).increment()
        }
    }

    private func errorCounter(_ operation: FuseOperation, _ code: Int32) -> Counter {
        let key = operation.rawValue << 16 | Int(UInt16(truncatingIfNeeded: code))
        return errorCounters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "blobfs_fuse_requests_total", dimensions: [("operation", "\(operation)"), ("result", errnoName(code))],
                factory: factory)
            counters[key] = counter
            return counter
        }
    }

    /// A blob was hashed at its first read: `bytes` long, matching its digest or not.
    public func verified(bytes: Int64, intact: Bool) {
        hashedBytes.increment(by: bytes)
        blobsVerified.increment()
        if !intact { verificationFailures.increment() }
    }

    /// The commit of an upload was refused.
    public func uploadRefused(_ reason: UploadRefusal) {
        uploadsRefused[reason]!.increment()
    }

    /// A storage driver call of `operation` started at `started` ended, failed or not.
    public func storageCalled(_ operation: StorageOperation, started: UInt64, failed: Bool) {
        storageDurations[operation.index].record(Self.seconds(since: started))
        storageRequests[operation.index].increment()
        if failed { storageErrors[operation.index].increment() }
    }
}

/// Why an upload's commit was refused: the `reason` label of `blobfs_uploads_refused_total`.
public enum UploadRefusal: String, CaseIterable, Sendable {
    /// The bytes do not hash to the digest the file is named by.
    case digestMismatch = "digest_mismatch"
    /// The size is not the one the name or the upload's state says.
    case sizeMismatch = "size_mismatch"
    /// The upload's files on disk were not what was written.
    case corruptUpload = "corrupt_upload"
    /// The storage failed (a full disk, an I/O error).
    case storageError = "storage_error"
    /// Anything else (a commit racing a cancel, for instance).
    case other
}

/// The name of an errno value, as the `result` label says it (`ENOENT`, `EIO`).
func errnoName(_ code: Int32) -> String {
    switch code {
    case EPERM: "EPERM"
    case ENOENT: "ENOENT"
    case EINTR: "EINTR"
    case EIO: "EIO"
    case ENXIO: "ENXIO"
    case EBADF: "EBADF"
    case EAGAIN: "EAGAIN"
    case ENOMEM: "ENOMEM"
    case EACCES: "EACCES"
    case EBUSY: "EBUSY"
    case EEXIST: "EEXIST"
    case EXDEV: "EXDEV"
    case ENOTDIR: "ENOTDIR"
    case EISDIR: "EISDIR"
    case EINVAL: "EINVAL"
    case ENFILE: "ENFILE"
    case EMFILE: "EMFILE"
    case EFBIG: "EFBIG"
    case ENOSPC: "ENOSPC"
    case EROFS: "EROFS"
    case EMLINK: "EMLINK"
    case ERANGE: "ERANGE"
    case ENAMETOOLONG: "ENAMETOOLONG"
    case ENOSYS: "ENOSYS"
    case ENOTEMPTY: "ENOTEMPTY"
    case ELOOP: "ELOOP"
    case ENODATA: "ENODATA"
    case EOVERFLOW: "EOVERFLOW"
    case EOPNOTSUPP: "EOPNOTSUPP"
    case ETIMEDOUT: "ETIMEDOUT"
    case ESTALE: "ESTALE"
    case EDQUOT: "EDQUOT"
    case ECANCELED: "ECANCELED"
    default: "errno_\(code)"
    }
}
