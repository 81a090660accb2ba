import Glibc

/// An errno value with its name, so a failed expectation reads "EIO (Input/output error)".
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public let code: Int32

    public init(_ code: Int32) {
        self.code = code
    }

    public static let EROFS = Errno(Glibc.EROFS)
    public static let ENOENT = Errno(Glibc.ENOENT)
    public static let EIO = Errno(Glibc.EIO)
    public static let EACCES = Errno(Glibc.EACCES)
    public static let EPERM = Errno(Glibc.EPERM)
    public static let EINVAL = Errno(Glibc.EINVAL)
    public static let EBUSY = Errno(Glibc.EBUSY)

    public var description: String {
        let names: [Int32: String] = [
            Glibc.EPERM: "EPERM", Glibc.ENOENT: "ENOENT", Glibc.EIO: "EIO", Glibc.EBADF: "EBADF", Glibc.EACCES: "EACCES",
            Glibc.EEXIST: "EEXIST", Glibc.ENOTDIR: "ENOTDIR", Glibc.EISDIR: "EISDIR", Glibc.EINVAL: "EINVAL",
            Glibc.EROFS: "EROFS", Glibc.ENOSYS: "ENOSYS", Glibc.ENOTSUP: "ENOTSUP", Glibc.ENODATA: "ENODATA",
            Glibc.ENOTCONN: "ENOTCONN", Glibc.ENOTEMPTY: "ENOTEMPTY", Glibc.EXDEV: "EXDEV", Glibc.ERANGE: "ERANGE", Glibc.EBUSY: "EBUSY",
        ]
        return "\(names[code] ?? "errno \(code)") (\(String(cString: strerror(code))))"
    }
}

/// The outcome of one system call: success, or the errno it set.
public enum SyscallOutcome: Equatable, Sendable, CustomStringConvertible {
    case succeeded
    case failed(Errno)

    public var description: String {
        switch self {
        case .succeeded: "succeeded"
        case .failed(let error): "failed with \(error)"
        }
    }
}

/// Calls `body` (a raw Glibc call returning -1 on failure) and reports errno exactly.
/// A file descriptor returned by a call that unexpectedly succeeded is closed.
public func syscallOutcome(closingDescriptor: Bool = false, _ body: () -> Int) -> SyscallOutcome {
    errno = 0
    let result = body()
    if result < 0 { return .failed(Errno(errno)) }
    if closingDescriptor { close(Int32(result)) }
    return .succeeded
}

/// POSIX file operations that report errno exactly, for asserting EIO, ENOENT and EROFS.
public enum Posix {
    /// open(2), always close-on-exec; the descriptor, or the errno. Tests run in parallel in one
    /// process: a descriptor of a mount's file inherited by a child another test starts would
    /// outlive its close here (and a passthrough open left so makes the inode's next write open
    /// fail with EIO).
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) -> Result<Int32, Errno> {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        return fd >= 0 ? .success(fd) : .failure(Errno(errno))
    }

    /// stat(2) of a path.
    public static func stat(_ path: String) -> Result<Glibc.stat, Errno> {
        var info = Glibc.stat()
        return fstatat(AT_FDCWD, path, &info, 0) == 0 ? .success(info) : .failure(Errno(errno))
    }

    /// Reads a whole file with read(2) in `chunk`-byte requests. On failure, the bytes read before
    /// the failing call come with the errno, so a test can check they were at least right.
    public static func readAll(_ path: String, chunk: Int = 1 << 20) -> (bytes: [UInt8], error: Errno?) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ([], Errno(errno)) }
        defer { close(fd) }
        return readToEnd(fd, chunk: chunk)
    }

    /// Reads from the current offset until end of file or the first error.
    public static func readToEnd(_ fd: Int32, chunk: Int = 1 << 20) -> (bytes: [UInt8], error: Errno?) {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, chunk) }
            if n < 0 {
                if errno == EINTR { continue }
                return (result, Errno(errno))
            }
            if n == 0 { return (result, nil) }
            result.append(contentsOf: buffer[..<n])
        }
    }

    /// pread(2) of exactly `count` bytes at `offset` (fewer at end of file), or the errno.
    public static func pread(_ fd: Int32, count: Int, at offset: Int64) -> Result<[UInt8], Errno> {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled)) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            if n == 0 { break }
            filled += n
        }
        return .success(Array(buffer[..<filled]))
    }

    /// Writes a whole new file (0644), outside any mount: for building fixtures and corrupting stores.
    public static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestSupportError("open(\(path)) for writing: \(Errno(errno))") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            guard n > 0 else { throw TestSupportError("write(\(path)): \(Errno(errno))") }
            written += n
        }
    }

    /// Reads a whole local file, throwing on any error (for files outside the mount).
    public static func readFile(_ path: String) throws -> [UInt8] {
        let (bytes, error) = readAll(path)
        if let error { throw TestSupportError("reading \(path): \(error)") }
        return bytes
    }

    /// Flips every bit of the byte at `offset` in place, with pwrite: the file keeps its size and inode.
    public static func flipByte(in path: String, at offset: Int64) throws {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw TestSupportError("open(\(path)): \(Errno(errno))") }
        defer { close(fd) }
        var byte: UInt8 = 0
        guard Glibc.pread(fd, &byte, 1, off_t(offset)) == 1 else { throw TestSupportError("pread(\(path)): \(Errno(errno))") }
        byte ^= 0xFF
        guard Glibc.pwrite(fd, &byte, 1, off_t(offset)) == 1 else { throw TestSupportError("pwrite(\(path)): \(Errno(errno))") }
        guard fsync(fd) == 0 else { throw TestSupportError("fsync(\(path)): \(Errno(errno))") }
    }

    /// realpath(3), so a path compares equal to the one /proc/self/mountinfo shows.
    public static func realPath(_ path: String) throws -> String {
        guard let resolved = Glibc.realpath(path, nil) else { throw TestSupportError("realpath(\(path)): \(Errno(errno))") }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Creates a directory (0755), throwing on failure.
    public static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 else { throw TestSupportError("mkdir(\(path)): \(Errno(errno))") }
    }
}

extension Posix {
    /// O_DIRECT, which the Glibc module leaves out (it needs _GNU_SOURCE).
    #if arch(x86_64)
    public static let O_DIRECT: Int32 = 0o40000
    #elseif arch(arm64)
    public static let O_DIRECT: Int32 = 0o200000
    #endif

    private typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private typealias RemoveXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32

    /// setxattr(2) (not in the Glibc module: <sys/xattr.h>), looked up in libc. -1 and errno on failure.
    public static func setxattr(_ path: String, _ name: String, _ value: [UInt8]) -> Int32 {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setxattr") else { errno = ENOSYS; return -1 }
        let call = unsafeBitCast(symbol, to: SetXattr.self)
        return value.withUnsafeBytes { call(path, name, $0.baseAddress, value.count, 0) }
    }

    /// removexattr(2), looked up in libc. -1 and errno on failure.
    public static func removexattr(_ path: String, _ name: String) -> Int32 {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "removexattr") else { errno = ENOSYS; return -1 }
        return unsafeBitCast(symbol, to: RemoveXattr.self)(path, name)
    }
}
