import CLinux
import Glibc
import Synchronization

/// A driver over a local directory, laid out as the registry's filesystem driver lays it out.
/// Every path is resolved beneath the root with openat2(2): symbolic links are never followed
/// and nothing outside the root is reachable.
public final class FilesystemDriver: StorageDriver {
    public var name: String { "filesystem" }
    /// The root directory, as given.
    public let root: String
    private let rootFD: Int32
    /// Running as root: what is created is given to the owner of the directory it is created in,
    /// so a store restored by root stays writable by the registry's own user.
    private let adoptsParentOwner = geteuid() == 0
    /// Whether reads still ask for O_NOATIME (see `openWithoutAtime`).
    let readsWithoutAtime = Atomic(true)
    /// The directories `getContent(_:below:limit:)` and `stat(_:below:)` read from.
    let heldDirectories: HeldDirectories

    /// Opens `root`, which must be an existing directory. At most `heldDirectoryLimit`
    /// directories are held open for reads below them, each found again at its path at most
    /// `heldDirectoryRecheck` after it was last checked (`HeldDirectories`).
    public init(root: String, heldDirectoryLimit: Int = 256, heldDirectoryRecheck: Duration = .seconds(1)) throws(StorageDriverError) {
        let fd = Glibc.open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageDriverError.io(operation: "open storage root", path: root, errno: errno) }
        self.root = root
        self.rootFD = fd
        heldDirectories = HeldDirectories(rootFD: fd, capacity: max(1, heldDirectoryLimit), recheckInterval: heldDirectoryRecheck)
    }

    /// How many directories are held open now (at most the limit given at init).
    public var heldDirectoryCount: Int { heldDirectories.count }

    /// The filesystem the root is on (fstatvfs of the root directory, as `df` would show it).
    public func capacity() throws(StorageDriverError) -> StorageCapacity? {
        var info = statvfs()
        guard fstatvfs(rootFD, &info) == 0 else { throw .io(operation: "statvfs", path: root, errno: errno) }
        return StorageCapacity(
            blockSize: UInt64(info.f_bsize), fragmentSize: UInt64(info.f_frsize), blocks: UInt64(info.f_blocks),
            freeBlocks: UInt64(info.f_bfree), availableBlocks: UInt64(info.f_bavail), files: UInt64(info.f_files),
            freeFiles: UInt64(info.f_ffree), availableFiles: UInt64(info.f_favail), nameMax: UInt64(info.f_namemax))
    }

    /// The owner of the root directory.
    public var owner: StorageOwner? {
        var st = Glibc.stat()
        guard fstat(rootFD, &st) == 0 else { return nil }
        return StorageOwner(user: st.st_uid, group: st.st_gid)
    }

    /// Gives a file or directory just created to the owner of its parent directory (see
    /// `adoptsParentOwner`).
    private func adopt(_ fd: Int32, parent: Int32) {
        guard adoptsParentOwner else { return }
        var st = Glibc.stat()
        guard fstat(parent, &st) == 0, st.st_uid != 0 || st.st_gid != 0 else { return }
        _ = fchown(fd, st.st_uid, st.st_gid)
    }

    deinit { Glibc.close(rootFD) }

    public func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        // O_NONBLOCK: a FIFO in the store must not hang the open (a link file that is a FIFO
        // blocked a lookup, and the process that asked, for good); a no-op on regular files.
        let fd = try open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY)
        let reader = FilesystemFileReader(fd: fd, path: path)  // closes `fd` when done
        let expected: Int64
        if limit <= Self.smallFileLimit {
            // A link file, on every cold lookup: no fstat. readAll asks for one byte more than
            // `limit`, so a larger file is seen; a directory fails its read with EISDIR; a FIFO
            // reads nothing (ESPIPE) and a device what it holds, as if it were a file's content.
            expected = Int64(limit)
        } else {
            let info = try fileStatus(fd, path)
            if info.kind == .directory { throw StorageDriverError.isDirectory(path.value) }
            if info.size > limit { throw StorageDriverError.tooLarge(path.value, size: info.size, limit: limit) }
            expected = info.size
        }
        do {
            return try reader.readAll(expected: expected, limit: limit, path: path.value)
        } catch .io(_, _, EISDIR) {
            throw .isDirectory(path.value)
        } catch .tooLarge(_, _, _) where limit <= Self.smallFileLimit {
            // Only now is the size worth its system call: the error names it.
            let size = (try? reader.currentSize()) ?? Int64(limit + 1)
            throw .tooLarge(path.value, size: size, limit: limit)
        }
    }

    /// Files read whole with at most this limit (links, `startedat`) are read without an fstat
    /// first: a buffer of the limit costs less than the system call.
    static let smallFileLimit = 4096

    /// A cold lookup's link read: `openat2` from the held directory (no access-time update: a
    /// store just written would otherwise have every link's inode dirtied by its first read),
    /// one `pread` of one byte more than `limit` into a buffer on the stack, `close`.
    public func getContent(_ relative: String, below directory: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        guard limit <= Self.smallFileLimit else { return try getContent(try directory.appending(path: relative), limit: limit) }
        let fd = try open(relative, below: directory, O_RDONLY | O_NONBLOCK | O_NOCTTY)
        defer { Glibc.close(fd) }
        let read = withUnsafeTemporaryAllocation(byteCount: limit + 1, alignment: 1) { buffer in
            var filled = 0
            while filled < buffer.count {
                let n = pread(fd, buffer.baseAddress! + filled, buffer.count - filled, off_t(filled))
                if n < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    return Result<[UInt8], StorageDriverError>.failure(
                        code == EISDIR
                            ? .isDirectory(directory.value + "/" + relative)
                            : .io(operation: "read", path: directory.value + "/" + relative, errno: code))
                }
                // A regular file reads short only at its end.
                let asked = buffer.count - filled
                filled += n
                if n == 0 || n < asked { break }
            }
            return .success(Array(UnsafeRawBufferPointer(rebasing: buffer[..<filled])))
        }
        switch read {
        case .failure(let error):
            throw error
        case .success(let content) where content.count > limit:
            // Only now is the size worth its system call: the error names it.
            var st = Glibc.stat()
            let size = fstat(fd, &st) == 0 ? Int64(st.st_size) : Int64(content.count)
            throw .tooLarge(directory.value + "/" + relative, size: size, limit: limit)
        case .success(let content):
            return content
        }
    }

    /// A cold lookup's data-file stat: `openat2` (`O_PATH`) from the held directory, `fstat`,
    /// `close` (a single `fstatat` would follow a symbolic link in a middle component).
    public func stat(_ relative: String, below directory: DriverPath) throws(StorageDriverError) -> FileInfo {
        let fd = try open(relative, below: directory, O_PATH)
        defer { Glibc.close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw failure("stat", directory.value + "/" + relative, errno) }
        return FileInfo(path: DriverPath(composedOfValidParts: directory.value + "/" + relative), status: st)
    }

    /// Opens `relative` beneath the held `directory`. A name not found in a directory that has
    /// been removed since it was held is looked for again in the one at its path now.
    private func open(_ relative: String, below directory: DriverPath, _ flags: Int32) throws(StorageDriverError) -> Int32 {
        var held = try heldDirectories.directory(directory, toRead: relative)
        for attempt in 0..<2 {
            let fd = withExtendedLifetime(held) {
                flags & O_PATH != 0
                    ? blobfs_openat_beneath(held.fd, relative, flags, 0) : openWithoutAtime(held.fd, relative, flags)
            }
            if fd >= 0 { return fd }
            let code = errno
            guard code == ENOENT, attempt == 0, held.isRemoved else { throw failure("open", directory.value + "/" + relative, code) }
            held = try heldDirectories.reopen(held, at: directory, toRead: relative)
        }
        preconditionFailure("unreachable: the second attempt returns or throws")
    }

    public func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) {
        let parentFD = try makeDirectories(path.parent, mode: 0o777)
        defer { Glibc.close(parentFD) }
        // Temp file, fsync, rename, fsync the directory: readers see the old or the new bytes,
        // never an empty or partial file, even after a crash.
        let temporary = ".\(path.name).tmp-\(randomSuffix())"
        let fd = blobfs_openat_beneath(parentFD, temporary, O_WRONLY | O_CREAT | O_EXCL, 0o666)
        guard fd >= 0 else { throw failure("create", path, errno) }
        adopt(fd, parent: parentFD)
        var ok = false
        defer {
            if !ok { unlinkat(parentFD, temporary, 0) }
        }
        do {
            defer { Glibc.close(fd) }
            // `withUnsafeBytes` rethrows untyped: the write's own error comes back as a `Result`.
            try content.withUnsafeBytes { bytes in Result { () throws(StorageDriverError) in try writeAll(fd, bytes, at: 0, path) } }.get()
            guard fsync(fd) == 0 else { throw failure("fsync", path, errno) }
        }
        guard renameat(parentFD, temporary, parentFD, path.name) == 0 else { throw failure("rename", path, errno) }
        ok = true
        _ = fsync(parentFD)
    }

    public func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader {
        let fd = try open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY)  // O_NONBLOCK: see getContent
        do throws(StorageDriverError) {
            if try fileStatus(fd, path).kind == .directory { throw .isDirectory(path.value) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return FilesystemFileReader(fd: fd, path: path)
    }

    public func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter {
        let parentFD = try makeDirectories(path.parent, mode: 0o777)
        let fd = blobfs_openat_beneath(parentFD, path.name, O_WRONLY | O_CREAT | (append ? 0 : O_TRUNC), 0o666)
        guard fd >= 0 else {
            let code = errno
            Glibc.close(parentFD)
            throw failure("open for writing", path, code)
        }
        do throws(StorageDriverError) {
            let info = try fileStatus(fd, path)
            guard info.kind == .file else { throw .isDirectory(path.value) }
            if info.size == 0 { adopt(fd, parent: parentFD) }  // new (or empty): never re-own someone's data
            return FilesystemFileWriter(fd: fd, parentFD: parentFD, path: path, size: info.size)
        } catch {
            Glibc.close(fd)
            Glibc.close(parentFD)
            throw error
        }
    }

    public func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        let fd = try open(path, O_PATH)
        defer { Glibc.close(fd) }
        return try fileStatus(fd, path)
    }

    public func createDirectory(_ path: DriverPath) throws(StorageDriverError) {
        Glibc.close(try makeDirectories(path, mode: 0o777))
    }

    public func list(_ path: DriverPath) throws(StorageDriverError) -> [String] {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        return try Self.entries(ofDirectory: fd, path).map(\.name).sorted()
    }

    /// getdents64(2) into one buffer reused for the whole directory: each batch is the records
    /// one call returned, read where the kernel put them.
    public func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { Glibc.close(fd) }
        // 64 KiB: about 740 names of a sha256 hex each, so 100,000 links take ~140 calls.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let filled = blobfs_getdents64(fd, buffer.baseAddress, UInt(buffer.count))
            if filled == 0 { return }
            guard filled > 0 else {
                if errno == EINTR { continue }
                throw failure("getdents64", path, errno)
            }
            try body(DirectoryNames(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<filled]), layout: .linuxDirents))
        }
    }

    public func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) {
        let sourceParent = try openDirectory(source.parent, flags: O_PATH)
        defer { Glibc.close(sourceParent) }
        let destinationParent = try makeDirectories(destination.parent, mode: 0o755)
        defer { Glibc.close(destinationParent) }
        guard renameat(sourceParent, source.name, destinationParent, destination.name) == 0 else {
            throw failure("rename to \(destination.value)", source, errno)
        }
    }

    public func delete(_ path: DriverPath) throws(StorageDriverError) {
        let parentFD = try openDirectory(path.parent, flags: O_RDONLY)
        defer { Glibc.close(parentFD) }
        try removeTree(parentFD, path.name, path, isTop: true)
    }

    public func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        try walkDirectory(fd, path, visit)
    }

    public func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory {
        FilesystemDirectory(driver: self, fd: try open(path, O_RDONLY | O_DIRECTORY), path: path)
    }

    // MARK: - Resolution

    /// Opens `relative` beneath `dirFD` for reading without updating its access time where the
    /// caller may (owner or CAP_FOWNER): reading a store should leave it as it was. After the
    /// first EPERM it stops asking, so a non-owner does not pay two opens per file.
    func openWithoutAtime(_ dirFD: Int32, _ relative: String, _ flags: Int32) -> Int32 {
        if readsWithoutAtime.load(ordering: .relaxed) {
            let fd = blobfs_openat_beneath(dirFD, relative, flags | O_NOATIME, 0)
            if fd >= 0 || errno != EPERM { return fd }
            readsWithoutAtime.store(false, ordering: .relaxed)
        }
        return blobfs_openat_beneath(dirFD, relative, flags, 0)
    }

    /// Opens a driver path beneath the root.
    private func open(_ path: DriverPath, _ flags: Int32) throws(StorageDriverError) -> Int32 {
        let fd = String(path.relative).withCString { blobfs_openat_beneath(rootFD, $0, flags, 0) }
        guard fd >= 0 else { throw failure("open", path, errno) }
        return fd
    }

    /// Opens a directory, or the root for nil.
    private func openDirectory(_ path: DriverPath?, flags: Int32) throws(StorageDriverError) -> Int32 {
        guard let path else {
            let fd = blobfs_openat_beneath(rootFD, ".", flags | O_DIRECTORY, 0)
            guard fd >= 0 else { throw StorageDriverError.io(operation: "open", path: root, errno: errno) }
            return fd
        }
        return try open(path, flags | O_DIRECTORY)
    }

    /// `mkdir -p` beneath the root, one component at a time so no link is ever followed;
    /// returns the directory opened for reading (fsync-able).
    private func makeDirectories(_ path: DriverPath?, mode: mode_t) throws(StorageDriverError) -> Int32 {
        if let existing = try? openDirectory(path, flags: O_RDONLY) { return existing }
        var current = try openDirectory(nil, flags: O_RDONLY)
        var walked = ""
        for component in path?.components ?? [] {
            walked += "/" + component
            let name = String(component)
            let created = mkdirat(current, name, mode) == 0
            if !created && errno != EEXIST {
                let code = errno
                Glibc.close(current)
                throw StorageDriverError.io(operation: "mkdir", path: walked, errno: code)
            }
            let next = blobfs_openat_beneath(current, name, O_RDONLY | O_DIRECTORY, 0)
            let code = errno
            if next >= 0 && created { adopt(next, parent: current) }
            Glibc.close(current)
            guard next >= 0 else {
                throw code == ENOTDIR
                    ? StorageDriverError.io(operation: "mkdir (a file is in the way)", path: walked, errno: code)
                    : failure("open", try DriverPath(walked), code)
            }
            current = next
        }
        return current
    }

    private func fileStatus(_ fd: Int32, _ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw failure("stat", path, errno) }
        return FileInfo(path: path, status: st)
    }

    // MARK: - Directories

    /// The entries of a directory, consuming `fd`.
    static func entries(ofDirectory fd: Int32, _ path: DriverPath) throws(StorageDriverError) -> [(name: String, kind: FileKind?)] {
        guard let dir = fdopendir(fd) else {
            let code = errno
            Glibc.close(fd)
            throw StorageDriverError.io(operation: "opendir", path: path.value, errno: code)
        }
        defer { closedir(dir) }
        var result: [(name: String, kind: FileKind?)] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw StorageDriverError.io(operation: "readdir", path: path.value, errno: errno) }
                return result
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let kind: FileKind? =
                switch Int32(entry.pointee.d_type) {
                case Int32(DT_REG): .file
                case Int32(DT_DIR): .directory
                case Int32(DT_UNKNOWN): nil
                default: .other
                }
            result.append((name, kind))
        }
    }

    private func walkDirectory(
        _ fd: Int32, _ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision
    ) throws(StorageDriverError) {
        let dirFD = dup(fd)  // `entries` consumes one descriptor; keep one to open children
        guard dirFD >= 0 else {
            Glibc.close(fd)
            throw StorageDriverError.io(operation: "dup", path: path.value, errno: errno)
        }
        defer { Glibc.close(dirFD) }
        let children = try Self.entries(ofDirectory: fd, path).sorted { $0.name < $1.name }
        for child in children {
            // Names outside the driver path grammar cannot be registry data: skip them.
            guard let childPath = try? path.appending(child.name) else { continue }
            var kind = child.kind
            if kind == nil {
                var st = Glibc.stat()
                guard fstatat(dirFD, child.name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                kind = FileInfo.kind(of: st.st_mode)
            }
            guard try visit(WalkEntry(path: childPath, kind: kind!)) == .continue, kind == .directory else { continue }
            let childFD = blobfs_openat_beneath(dirFD, child.name, O_RDONLY | O_DIRECTORY, 0)
            guard childFD >= 0 else {
                if errno == ENOENT { continue }  // removed while we walked
                throw failure("open", childPath, errno)
            }
            try walkDirectory(childFD, childPath, visit)
        }
    }

    /// Removes `name` in `parentFD`, recursing into directories without following links.
    private func removeTree(_ parentFD: Int32, _ name: String, _ path: DriverPath, isTop: Bool) throws(StorageDriverError) {
        if unlinkat(parentFD, name, 0) == 0 { return }
        switch errno {
        case ENOENT:
            if isTop { throw StorageDriverError.pathNotFound(path.value) }
            return
        case EISDIR:  // a directory: empty it first
            break
        case EPERM:
            // POSIX allows EPERM for a directory too; anything else (an immutable file) is an error.
            var st = Glibc.stat()
            guard fstatat(parentFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0, FileInfo.kind(of: st.st_mode) == .directory else {
                throw StorageDriverError.io(operation: "unlink", path: path.value, errno: EPERM)
            }
        default:
            throw failure("unlink", path, errno)
        }
        let fd = blobfs_openat_beneath(parentFD, name, O_RDONLY | O_DIRECTORY, 0)
        guard fd >= 0 else { throw failure("open", path, errno) }
        let childFD = dup(fd)
        defer { Glibc.close(childFD) }
        for child in try Self.entries(ofDirectory: fd, path) {
            try removeTree(childFD, child.name, (try? path.appending(child.name)) ?? path, isTop: false)
        }
        if unlinkat(parentFD, name, AT_REMOVEDIR) != 0 && errno != ENOENT {
            throw failure("rmdir", path, errno)
        }
    }
}

/// Maps an errno from a path operation to the driver's errors.
func failure(_ operation: String, _ path: DriverPath, _ code: Int32) -> StorageDriverError {
    failure(operation, path.value, code)
}

func failure(_ operation: String, _ path: String, _ code: Int32) -> StorageDriverError {
    switch code {
    case ENOENT, ENOTDIR: .pathNotFound(path)
    case ELOOP, EXDEV: .symlinkRefused(path)
    case EISDIR: .isDirectory(path)
    default: .io(operation: operation, path: path, errno: code)
    }
}

/// Writes every byte at `offset`, retrying short writes and EINTR (`LocalWrite.all`).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64, _ path: DriverPath) throws(StorageDriverError) {
    try LocalWrite.all(bytes, to: fd, at: offset, path: path.value)
}

private func randomSuffix() -> String {
    var bytes = (0..<8).map { _ in UInt8.random(in: 0...255) }
    bytes = bytes.map { Array("0123456789abcdef".utf8)[Int($0 & 15)] }
    return String(decoding: bytes, as: UTF8.self)
}

extension FileInfo {
    init(path: DriverPath, status st: Glibc.stat) {
        let kind = FileInfo.kind(of: st.st_mode)
        self.init(path: path, kind: kind, size: kind == .file ? Int64(st.st_size) : 0, modified: Int64(st.st_mtim.tv_sec))
    }

    static func kind(of mode: mode_t) -> FileKind {
        switch mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        default: .other
        }
    }
}
