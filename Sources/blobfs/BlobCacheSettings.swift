import Glibc
import Logging
import Storage

/// `--cache-dir` and `--cache-size` (or `-o cache_dir=,cache_size=`): the local blob cache a
/// mount of storage that is not a local directory reads through (docs/architecture.md, "Blob
/// cache"). A filesystem store is read directly and gets none.
struct BlobCacheSettings {
    var directory: String?
    var size: CacheSize?

    /// The flags' values (`size` as given), else the `-o` options'.
    init(directory: String?, size: String?, options: MountOptionList) throws(CommandFailure) {
        self.directory = directory ?? options.cacheDirectory
        if let size {
            guard let parsed = CacheSize(size) else { throw .usage("--cache-size \(size): expected bytes (10G, 512M) or a percentage (5%)") }
            self.size = parsed
        } else {
            self.size = options.cacheSize
        }
    }

    /// The cache's size: bytes (with an optional K, M, G or T suffix, binary), or a percentage
    /// of the cache directory's filesystem.
    enum CacheSize: Equatable {
        case bytes(Int64)
        case percent(Double)

        init?(_ text: String) {
            var number = Substring(text)
            if number.hasSuffix("%") {
                guard let percent = Double(number.dropLast()), percent > 0, percent <= 100 else { return nil }
                self = .percent(percent)
                return
            }
            for unit in ["iB", "B"] where number.hasSuffix(unit) { number = number.dropLast(unit.count); break }
            var shift: Int64 = 0
            if let last = number.last, let index = "KMGT".firstIndex(of: Character(last.uppercased())) {
                shift = 10 * Int64("KMGT".distance(from: "KMGT".startIndex, to: index) + 1)
                number = number.dropLast()
            }
            guard let value = Double(number), value >= 0, value * Double(Int64(1) << shift) < Double(Int64.max) else { return nil }
            self = .bytes(Int64(value * Double(Int64(1) << shift)))
        }
    }

    /// The cache's place when none is given: /var/cache/blobfs for root (the daemon's state,
    /// FHS's place for data it can fetch again), else the user's cache directory.
    static func defaultDirectory() -> String {
        if geteuid() == 0 { return "/var/cache/blobfs" }
        if let xdg = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), xdg.hasPrefix("/") { return xdg + "/blobfs" }
        if let home = getenv("HOME").map({ String(cString: $0) }), home.hasPrefix("/") { return home + "/.cache/blobfs" }
        return "/tmp/blobfs-cache-\(geteuid())"
    }

    /// The cache for a store: nil for a local directory (`storageIsLocal`), whose data files the
    /// kernel and the daemon read directly. Asked of the store, not of its driver's type: the
    /// driver a mount uses may be a wrapper (metrics) around the filesystem driver.
    func cache(storageIsLocal: Bool, logger: Logger) throws(CommandFailure) -> BlobDataCache? {
        if storageIsLocal {
            if directory != nil || size != nil {
                logger.notice("--cache-dir and --cache-size apply to remote storage only: a local store is read directly")
            }
            return nil
        }
        let directory = directory ?? Self.defaultDirectory()
        let capacity: Int64
        switch size {
        case nil: capacity = BlobDataCache.defaultCapacity(for: directory)
        case .bytes(let bytes)?: capacity = bytes
        case .percent(let percent)?:
            var fs = statvfs()
            guard statvfs(directory, &fs) == 0 || (mkdir(directory, 0o700) == 0 && statvfs(directory, &fs) == 0) else {
                throw CommandFailure("--cache-dir \(directory): \(String(cString: strerror(errno)))")
            }
            capacity = Int64(Double(fs.f_blocks) * Double(fs.f_frsize) * percent / 100)
        }
        do {
            return try BlobDataCache(directory: directory, capacity: capacity, logger: Logger(label: "blobfs.cache"))
        } catch {
            throw CommandFailure("--cache-dir \(directory): \(error)")
        }
    }
}
