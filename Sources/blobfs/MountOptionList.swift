import BlobFS
import Logging

/// The `-o` options of `blobfs mount` and of the mount.fuse form (`mount -t fuse.blobfs`, fstab):
/// blobfs's own settings, options handed to libfuse, and mount(8)/fstab options that mean nothing
/// to a FUSE filesystem and are ignored. Anything else is refused, so that a typo fails before
/// the mount instead of being lost in libfuse's output.
struct MountOptionList {
    /// `rw` was asked for (the last of `ro`/`rw` wins, as in mount(8)).
    var readWrite = false
    /// `allow_delete`: unlink removes a repository's link to a blob.
    var allowDelete = false
    /// `oci`: the read-only OCI image layout view under `oci/`.
    var ociView = false
    /// `hard_links` (the default) or `no_hard_links`: whether a blob's names share one inode
    /// number and count as its links; nil when neither is given.
    var hardLinks: Bool?
    /// Options for libfuse, in the order given.
    var fuseOptions: [String] = []
    var configPath: String?
    var cacheEntries: Int?
    var blobTimeout: Double?
    var directoryTimeout: Double?
    var negativeTimeout: Double?
    var verifyReads: Bool?
    var threads: Int?
    /// `passthrough=auto|off`.
    var passthrough: PassthroughMode?
    var logLevel: Logger.Level?
    var logFile: String?
    /// `remember_verified=<file>`: the verification ledger.
    var ledgerPath: String?
    /// `metrics_address=<ip:port>`: serve Prometheus metrics there.
    var metricsAddress: String?
    /// `s3_endpoint=`, `s3_region=`, `s3_credentials_file=`: as `--s3-endpoint` and the others.
    var s3Endpoint: String?
    var s3Region: String?
    var s3CredentialsFile: String?
    /// `cache_dir=` and `cache_size=`: the local blob cache of remote storage.
    var cacheDirectory: String?
    var cacheSize: BlobCacheSettings.CacheSize?
    /// mount(8) options that were ignored, for a debug line.
    var ignored: [String] = []

    /// libfuse's options that blobfs passes on as they are.
    static let fuseFlags: Set<String> = [
        "allow_other", "allow_root", "auto_unmount", "default_permissions", "debug",
        "nosuid", "nodev", "noexec", "noatime", "nodiratime", "sync", "dirsync", "nosymfollow",
    ]
    static let fuseValued: Set<String> = ["fsname", "subtype", "context", "fscontext", "defcontext", "rootcontext"]
    /// Options mount(8), mount.fuse3 and fstab add that do not concern the filesystem: the
    /// defaults a FUSE mount has anyway (`dev`, `suid`, `exec` are what mount.fuse3 adds for root),
    /// and fstab's own (`noauto`, `nofail`, `_netdev`, `x-systemd.*`, …).
    static let ignoredFlags: Set<String> = [
        "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail", "_netdev", "_rnetdev",
        "dev", "suid", "exec", "async", "atime", "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime",
        "nolazytime", "symfollow", "loud", "silent",
    ]

    /// Parses each `-o` argument (comma-separated lists); throws a usage failure naming the option.
    init(parsing arguments: [String]) throws(CommandFailure) {
        for argument in arguments {
            for option in argument.split(separator: ",", omittingEmptySubsequences: true).map(String.init) {
                try apply(option)
            }
        }
    }

    private mutating func apply(_ option: String) throws(CommandFailure) {
        let (name, value) = Self.split(option)
        switch (name, value) {
        case ("ro", nil): readWrite = false
        case ("rw", nil): readWrite = true
        case ("allow_delete", nil): allowDelete = true
        case ("oci", nil): ociView = true
        case ("hard_links", nil): hardLinks = true
        case ("no_hard_links", nil): hardLinks = false
        case ("config", let v?): configPath = try Self.nonEmpty(v, option)
        case ("cache_entries", let v?): cacheEntries = try Self.integer(v, option, minimum: 0)
        case ("blob_timeout", let v?): blobTimeout = try Self.seconds(v, option)
        case ("dir_timeout", let v?): directoryTimeout = try Self.seconds(v, option)
        case ("negative_timeout", let v?): negativeTimeout = try Self.seconds(v, option)
        case ("no_verify", nil): verifyReads = false
        case ("threads", let v?): threads = try Self.integer(v, option, minimum: 1)
        case ("passthrough", let v?):
            guard let mode = PassthroughMode(rawValue: v) else { throw .usage("mount option \(option): expected auto or off") }
            passthrough = mode
        case ("log_level", let v?):
            guard let level = LogLevelArgument(rawValue: v) else {
                let levels = LogLevelArgument.allCases.map(\.rawValue).joined(separator: ", ")
                throw .usage("mount option \(option): the level is one of \(levels)")
            }
            logLevel = level.level
        case ("log", let v?): logFile = try Self.nonEmpty(v, option)
        case ("metrics_address", let v?): metricsAddress = try Self.nonEmpty(v, option)
        case ("remember_verified", let v?): ledgerPath = try Self.nonEmpty(v, option)
        case ("s3_endpoint", let v?): s3Endpoint = try Self.nonEmpty(v, option)
        case ("s3_region", let v?): s3Region = try Self.nonEmpty(v, option)
        case ("s3_credentials_file", let v?): s3CredentialsFile = try Self.nonEmpty(v, option)
        case ("cache_dir", let v?): cacheDirectory = try Self.nonEmpty(v, option)
        case ("cache_size", let v?):
            guard let size = BlobCacheSettings.CacheSize(v) else {
                throw .usage("mount option \(option): expected bytes (10G, 512M) or a percentage (5%)")
            }
            cacheSize = size
        case (let n, nil) where Self.fuseFlags.contains(n): fuseOptions.append(option)
        case (let n, _?) where Self.fuseValued.contains(n): fuseOptions.append(option)
        case (let n, nil) where Self.ignoredFlags.contains(n): ignored.append(option)
        case (let n, _) where n.hasPrefix("x-") || n.hasPrefix("X-") || n == "comment": ignored.append(option)
        case ("max_read", _):
            throw .usage("mount option \(option) is not supported: blobfs sets the read size itself")
        default:
            throw .usage("unknown mount option \"\(option)\" (blobfs mount --help lists them)")
        }
    }

    private static func split(_ option: String) -> (String, String?) {
        guard let equals = option.firstIndex(of: "=") else { return (option, nil) }
        return (String(option[..<equals]), String(option[option.index(after: equals)...]))
    }

    private static func nonEmpty(_ value: String, _ option: String) throws(CommandFailure) -> String {
        guard !value.isEmpty else { throw .usage("mount option \(option) needs a value") }
        return value
    }

    private static func integer(_ value: String, _ option: String, minimum: Int) throws(CommandFailure) -> Int {
        guard let n = Int(value), n >= minimum else {
            throw .usage("mount option \(option): expected a whole number ≥ \(minimum)")
        }
        return n
    }

    private static func seconds(_ value: String, _ option: String) throws(CommandFailure) -> Double {
        guard let s = Double(value), s.isFinite, s >= 0 else { throw .usage("mount option \(option): expected seconds ≥ 0") }
        return s
    }
}
