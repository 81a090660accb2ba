import Distribution
import Glibc
import StorageDriver

extension StorageDriverError {
    /// The one translation of a driver failure that has no meaning of its own to the caller.
    /// Where Storage gives a driver error a meaning (`pathNotFound` of a link or a data file is
    /// the blob's `unknown`, as upstream's `case driver.PathNotFoundError: return
    /// ErrBlobUnknown`), it catches that case itself first; everything else comes here. `io`
    /// keeps the operating system's errno; each other case gets the errno that says what it is.
    public var blobError: BlobError {
        switch self {
        case .pathNotFound(let p): .io(operation: "open", path: p, errno: ENOENT)
        case .invalidPath(let p): .io(operation: "resolve", path: p, errno: EINVAL)
        case .isDirectory(let p): .io(operation: "open", path: p, errno: EISDIR)
        case .symlinkRefused(let p): .io(operation: "resolve (symbolic links are not followed)", path: p, errno: ELOOP)
        case .tooLarge(let p, _, _): .io(operation: "read", path: p, errno: EFBIG)
        case .io(let operation, let p, let e): .io(operation: operation, path: p, errno: e)
        }
    }
}

/// Runs a driver call whose failures have no meaning of their own here: each becomes its
/// `blobError`.
func driverCall<T>(_ body: () throws(StorageDriverError) -> T) throws(BlobError) -> T {
    do {
        return try body()
    } catch {
        throw error.blobError
    }
}
