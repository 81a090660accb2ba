import Distribution
import Glibc
import StorageDriver

extension StorageDriverError {
    /// The blob error for a driver failure that has no meaning of its own to the caller;
    /// callers handle `pathNotFound` themselves where it means "unknown".
    var blobError: BlobError {
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

/// Runs a driver call, turning driver errors into blob errors.
func driverCall<T>(_ body: () throws -> T) throws(BlobError) -> T {
    do {
        return try body()
    } catch let error as StorageDriverError {
        throw error.blobError
    } catch let error as BlobError {
        throw error
    } catch {
        throw .io(operation: "\(error)", path: "", errno: EIO)
    }
}
