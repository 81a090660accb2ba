import Distribution
import Glibc

/// The one place where errors become errno values (docs/architecture.md, "Errors"). Errors that
/// mean "something is wrong with the store" are EIO, so that cp, rsync and tar fail instead of
/// copying garbage. Every case has a test (Tests/BlobFSOperationTests/ErrnoTableTests.swift).
func errnoValue(for error: FileSystemError) -> Int32 {
    switch error {
    case .noEntry: ENOENT
    case .notADirectory: ENOTDIR
    case .isADirectory: EISDIR
    case .readOnlyMount: EROFS
    case .notPermitted: EPERM
    case .exists: EEXIST
    case .invalidArgument: EINVAL
    case .badHandle: EBADF
    case .staleName: ESTALE
    case .uploadNotReadable: EACCES
    case .bufferTooSmall: ERANGE
    case .noSuchAttribute: ENODATA
    // "Not supported" (not "no such attribute") makes `ls -l` stop asking for ACLs and SELinux
    // labels: one round trip per file instead of two.
    case .attributeNotSupported: EOPNOTSUPP
    case .blobRefused: EIO
    // "Device or resource busy": the readers are the resource's holders; close them and retry.
    case .busyWithReaders: EBUSY
    case .vanishedAfterWrite: EIO
    case .notAnswered: EIO
    case .storage(let error, _): errnoValue(forStorage: error)
    // A name that can never become a blob, refused before anything is written (UploadName).
    case .refusedName: EINVAL
    // An operation whose result a store cannot hold (WriteRefusal): "not permitted here".
    case .refusedWrite: EPERM
    // What a file in tags/ holds cannot be a tag: refused at close or rename, nothing stored.
    case .refusedTagFile: EINVAL
    }
}

/// What storage threw, as errno. Storage hands the filesystem only blob errors: a driver error
/// reaches here translated once, by `StorageDriverError.blobError` (an `io` with its errno).
func errnoValue(forStorage error: BlobError) -> Int32 {
    switch error {
    case .unknown, .invalidDigestString, .invalidRepositoryName, .uploadUnknown: ENOENT
    case .invalidDigest, .invalidLength, .corruptLink, .dataMissing, .truncated, .corruptUpload, .invalidDescriptor, .changed,
        .notRegularFile, .cacheFailed:
        EIO
    case .uploadClosed: EBADF
    case .unsupported: EPERM
    // A symbolic link planted in the store is refused, and reads as an I/O error, not as a
    // confusing "too many levels of symbolic links".
    case .io(_, _, let code): code == ELOOP ? EIO : code
    }
}

/// Whether an error deserves an error-level log line: everything but "no such name".
func isWorthLogging(_ code: Int32) -> Bool {
    code != ENOENT
}
