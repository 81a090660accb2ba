import CLinux
import Glibc
import Synchronization

/// The directories a `FilesystemDriver` holds open for the many small reads below them (a
/// repository's `_layers/sha256`, the blob store's `blobs/sha256`): a cold lookup then resolves
/// `<hex>/link` and `<xx>/<hex>/data` from a near descriptor instead of eight or nine components
/// from the root each time. Opened like every path (openat2 beneath the root, no symbolic link
/// anywhere), as `O_PATH` descriptors, at most `capacity` of them.
///
/// What can happen to a held directory, and what a read through it then sees:
/// - Files below it come and go (the registry writes links, its GC removes `<hex>` directories,
///   blobfs writes and unlinks): the held directory is that directory, so it sees them at once.
/// - It is removed (`rm -r` of a repository, then perhaps made again with other links): a
///   removed directory has no link count, and the first name not found below it checks that
///   (`fstat`) and opens the path again, so the new directory answers at once.
/// - It, or a directory above it, is renamed away or replaced by a symbolic link (an operator's
///   `mv`; neither the registry nor its GC ever renames or replaces these directories): each
///   held directory is found again from the root at most `recheckInterval` after it was last
///   checked, and dropped when the path now names another directory, or nothing, or passes
///   through a symbolic link (which is then refused, as a path read would be). Until then, for
///   at most that interval, it answers as the directory it was; the kernel keeps a blob's entry
///   for longer than that (the blob timeout) anyway.
/// A descriptor is closed only when no read is using it: a read holds its `Held` for the call.
final class HeldDirectories: Sendable {
    /// One directory held open.
    final class Held: Sendable {
        let fd: Int32
        let device: UInt64
        let inode: UInt64
        /// When it was last found at its path (CLOCK_MONOTONIC, nanoseconds).
        let checkedAt: Atomic<Int64>

        init(fd: Int32, device: UInt64, inode: UInt64, checkedAt: Int64) {
            self.fd = fd
            self.device = device
            self.inode = inode
            self.checkedAt = Atomic(checkedAt)
        }

        deinit { Glibc.close(fd) }

        /// Whether the directory has been removed (a removed directory's link count is 0).
        var isRemoved: Bool {
            var st = Glibc.stat()
            return fstat(fd, &st) != 0 || st.st_nlink == 0
        }
    }

    private let rootFD: Int32
    let capacity: Int
    /// Nanoseconds between two checks that a held directory is still at its path.
    let recheckInterval: Int64
    /// A leaf lock: no system call runs under it (the descriptors it drops are closed by the last
    /// holder, after it is released).
    private let held = Mutex<[DriverPath: Held]>([:])

    /// `rootFD` is the driver's root, which outlives this.
    init(rootFD: Int32, capacity: Int, recheckInterval: Duration) {
        self.rootFD = rootFD
        self.capacity = capacity
        let (seconds, attoseconds) = recheckInterval.components
        self.recheckInterval = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// How many directories are held now.
    var count: Int { held.withLock { $0.count } }

    /// `path` held open, to read `relative` below it: the one held already when it was checked
    /// recently enough (or is still at its path), else opened now. `pathNotFound` or
    /// `symlinkRefused`, naming `relative` below `path`, as a read by path would fail.
    func directory(_ path: DriverPath, toRead relative: String) throws(StorageDriverError) -> Held {
        let now = Self.now()
        if let known = held.withLock({ $0[path] }) {
            if now - known.checkedAt.load(ordering: .relaxed) < recheckInterval { return known }
            return try recheck(known, at: path, toRead: relative, now: now)
        }
        return try replace(nil, at: path, with: try open(path, toRead: relative, now: now))
    }

    /// Drops `stale` (found removed) and holds `path` afresh.
    func reopen(_ stale: Held, at path: DriverPath, toRead relative: String) throws(StorageDriverError) -> Held {
        try recheck(stale, at: path, toRead: relative, now: Self.now())
    }

    private func recheck(_ known: Held, at path: DriverPath, toRead relative: String, now: Int64) throws(StorageDriverError) -> Held {
        let current: Held
        do {
            current = try open(path, toRead: relative, now: now)
        } catch {
            held.withLock { if $0[path] === known { $0[path] = nil } }
            throw error
        }
        if current.device == known.device && current.inode == known.inode && !known.isRemoved {
            known.checkedAt.store(now, ordering: .relaxed)
            return known  // `current` closes its descriptor as it goes
        }
        return try replace(known, at: path, with: current)
    }

    /// Holds `current` at `path` in place of `previous` (nil: nothing was held).
    private func replace(_ previous: Held?, at path: DriverPath, with current: Held) throws(StorageDriverError) -> Held {
        held.withLock { held in
            if held[path] == nil, held.count >= capacity {
                // Any one goes: a crawl of more repositories than this reopens as it goes, and a
                // working set that fits stays.
                held.remove(at: held.startIndex)
            }
            if previous == nil || held[path] === previous || held[path] == nil { held[path] = current }
        }
        return current
    }

    private func open(_ path: DriverPath, toRead relative: String, now: Int64) throws(StorageDriverError) -> Held {
        let fd = String(path.relative).withCString { blobfs_openat_beneath(rootFD, $0, O_PATH | O_DIRECTORY, 0) }
        guard fd >= 0 else { throw failure("open", path.value + "/" + relative, errno) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw failure("stat", path.value + "/" + relative, code)
        }
        return Held(fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), checkedAt: now)
    }

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
