import Distribution
import Glibc
import Logging

/// The cache directory's files as a start finds them: `<algorithm>/<hh>/<hex>` published blobs,
/// `tmp/` fetches in progress or left by a crash. Anything else in an algorithm's tree is
/// not the cache's and is removed; the top level is left alone apart from those names.
enum CacheDirectory {
    struct Published {
        var digest: Digest
        var size: Int64
        var lastUse: Int64
    }

    /// Creates `path` and its parents, private to the daemon's user (mode 0700): the cache
    /// trusts a published file by its name, so no one else may write there.
    static func create(_ path: String) throws(BlobError) {
        var built = ""
        for component in path.split(separator: "/") {
            built += "/" + component
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                throw .io(operation: "mkdir", path: built, errno: errno)
            }
        }
    }

    /// Refuses a cache directory that someone other than the daemon's user could write: a file
    /// put there under a digest's name would be served as that blob without a hash.
    static func checkPrivate(_ path: String) throws(BlobError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            throw .io(operation: "use as the blob cache (it must be a directory of the daemon's user that no one else can write)", path: path, errno: EACCES)
        }
    }

    /// Removes every temporary no fetch holds (its fetch's exclusive lock is gone with it).
    static func removeStaleTemporaries(in path: String, logger: Logger) {
        for name in names(in: path) {
            let file = path + "/" + name
            let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if fd < 0 {
                unlink(file)  // not a regular file we can open: not ours either
                continue
            }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                logger.info("removing a blob cache temporary left by an interrupted fetch", metadata: ["path": "\(file)"])
                unlink(file)
            }
            close(fd)
        }
    }

    /// The published files, checked by name (a digest of the directory's algorithm, under its
    /// own two-character prefix); everything else below an algorithm is removed.
    static func scan(_ root: String, logger: Logger) -> [Published] {
        var found: [Published] = []
        for algorithm in DigestAlgorithm.allCases {
            let top = root + "/" + algorithm.rawValue
            for prefix in names(in: top) {
                let dir = top + "/" + prefix
                var st = stat()
                guard lstat(dir, &st) == 0 else { continue }
                guard (st.st_mode & S_IFMT) == S_IFDIR, prefix.utf8.count == 2 else {
                    removeForeign(dir, logger: logger)
                    continue
                }
                for name in names(in: dir) {
                    let file = dir + "/" + name
                    guard lstat(file, &st) == 0 else { continue }
                    guard (st.st_mode & S_IFMT) == S_IFREG, name.hasPrefix(prefix),
                        let digest = try? Digest(parsing: "\(algorithm.rawValue):\(name)")
                    else {
                        removeForeign(file, logger: logger)
                        continue
                    }
                    let access = Int64(st.st_atim.tv_sec) * 1_000_000_000 + Int64(st.st_atim.tv_nsec)
                    let modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
                    found.append(Published(digest: digest, size: Int64(st.st_size), lastUse: max(access, modified)))
                }
            }
        }
        return found
    }

    private static func removeForeign(_ path: String, logger: Logger) {
        logger.warning("removing a file in the blob cache that is not a published blob", metadata: ["path": "\(path)"])
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            for name in names(in: path) { removeForeign(path + "/" + name, logger: logger) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// A directory's entries but "." and ".."; none when it cannot be read.
    static func names(in path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
