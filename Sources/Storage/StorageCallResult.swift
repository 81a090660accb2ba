import Distribution
import Glibc
import StorageDriver

/// A storage call's outcome as a `BlobError`, whether the call throws `BlobError`, a driver
/// error or (before the typed-throws conversion reaches every caller) any error: the manifest
/// and tag stores report per-entry failures in listings, and a listing entry holds a
/// `Result<_, BlobError>`. Driver errors get their one translation (`blobError`).
func storageCallResult<T>(_ body: () throws -> T) -> Result<T, BlobError> {
    do {
        return .success(try body())
    } catch let error as BlobError {
        return .failure(error)
    } catch let error as StorageDriverError {
        return .failure(error.blobError)
    } catch {
        return .failure(.io(operation: "\(error)", path: "", errno: EIO))
    }
}
