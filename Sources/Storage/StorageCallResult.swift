import Distribution
import Glibc
import StorageDriver

// The manifest and tag stores call the driver and the blob stores through these two, so that one
// text compiles whether those calls throw untyped errors or (after the typed-throws conversion)
// `StorageDriverError` and `BlobError`: the closures are untyped either way, so neither form
// meets a catch that is always or never true.

/// A driver call's outcome, for callers that give `pathNotFound` a meaning of their own.
func driverCallResult<T>(_ body: () throws -> T) -> Result<T, StorageDriverError> {
    do {
        return .success(try body())
    } catch let error as StorageDriverError {
        return .failure(error)
    } catch {
        return .failure(.io(operation: "\(error)", path: "", errno: EIO))
    }
}

/// A storage call's outcome as a `BlobError`: a listing entry holds a `Result<_, BlobError>`,
/// and a driver error gets its one translation (`blobError`).
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
