import Distribution
import Glibc
import StorageDriver

/// The one place where errors become errno values (design §6). Errors that mean "something is
/// wrong with the store" are EIO, so that cp, rsync and tar fail instead of copying garbage.
func errnoValue(for error: any Error) -> Int32 {
    switch error {
    case let error as BlobError:
        switch error {
        case .unknown, .invalidDigestString, .invalidRepositoryName, .uploadUnknown: ENOENT
        case .invalidDigest, .invalidLength, .corruptLink, .dataMissing, .truncated, .corruptUpload, .invalidDescriptor, .changed, .notRegularFile: EIO
        case .uploadClosed: EBADF
        case .unsupported: EPERM
        // A symbolic link planted in the store is refused, and reads as an I/O error, not as a
        // confusing "too many levels of symbolic links".
        case .io(_, _, let code): code == ELOOP ? EIO : code
        }
    // A name that can never become a blob, and an operation a store cannot hold: refused before
    // anything is written (UploadName, WriteRefusal).
    case is UploadName.Refusal: EINVAL
    case is WriteRefusal: EPERM
    case let error as StorageDriverError:
        switch error {
        case .pathNotFound: ENOENT
        case .io(_, _, let code): code == ELOOP ? EIO : code
        default: EIO
        }
    default:
        EIO
    }
}

/// Whether an error deserves an error-level log line: everything but "no such name".
func isWorthLogging(_ code: Int32) -> Bool {
    code != ENOENT
}
