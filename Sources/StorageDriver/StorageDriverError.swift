/// How a driver operation fails; `io` keeps the operating system's errno so that callers can
/// report ENOSPC, EIO and the like as they are.
public enum StorageDriverError: Error, Sendable, Hashable, CustomStringConvertible {
    case pathNotFound(String)
    case invalidPath(String)
    /// A file operation on a directory.
    case isDirectory(String)
    /// A symbolic link on the path: the driver never follows one.
    case symlinkRefused(String)
    /// A file larger than the caller's limit.
    case tooLarge(String, size: Int64, limit: Int)
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .pathNotFound(let p): "path not found: \(p)"
        case .invalidPath(let p): "invalid driver path: \(p.debugDescription)"
        case .isDirectory(let p): "is a directory: \(p)"
        case .symlinkRefused(let p): "symbolic link refused on path \(p)"
        case .tooLarge(let p, let size, let limit): "\(p) is \(size) bytes, more than the limit of \(limit)"
        case .io(let op, let p, let e): "\(op) \(p): \(String(cString: strerror(e))) (errno \(e))"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
