@testable import BlobFS
import Distribution
import Glibc
import StorageDriver
import Testing

/// The one errno table: every case of the filesystem's errors, and what storage throws.
@Suite struct ErrnoTableTests {
    @Test(arguments: [
        (FileSystemError.noEntry, ENOENT),
        (.notADirectory, ENOTDIR),
        (.isADirectory, EISDIR),
        (.readOnlyMount, EROFS),
        (.notPermitted, EPERM),
        (.exists, EEXIST),
        (.invalidArgument, EINVAL),
        (.badHandle, EBADF),
        (.staleName, ESTALE),
        (.uploadNotReadable, EACCES),
        (.bufferTooSmall, ERANGE),
        (.noSuchAttribute, ENODATA),
        (.attributeNotSupported, EOPNOTSUPP),
        (.blobRefused, EIO),
        (.vanishedAfterWrite(operation: "mkdir x"), EIO),
        (.notAnswered, EIO),
        (.refusedName(.notADigest(name: "layer.tar", suggestion: nil), operation: "create"), EINVAL),
        (.refusedWrite(.symbolicLink(name: "x"), operation: "symlink"), EPERM),
        (.system(code: EACCES, operation: "statfs"), EACCES),
    ])
    func eachFilesystemErrorHasItsErrno(error: FileSystemError, code: Int32) {
        #expect(errnoValue(for: error) == code)
    }

    static let digest = Digester.digest(of: Array("x".utf8))

    @Test(arguments: [
        (BlobError.unknown(digest), ENOENT),
        (.invalidDigestString(.invalidFormat("x")), ENOENT),
        (.invalidRepositoryName("A", reason: "uppercase"), ENOENT),
        (.invalidDescriptor("size"), EIO),
        (.uploadUnknown("u"), ENOENT),
        (.invalidDigest(digest, reason: "content does not match digest"), EIO),
        (.invalidLength(expected: 1, actual: 2), EIO),
        (.corruptLink(path: "p", reason: "r"), EIO),
        (.dataMissing(digest, path: "p"), EIO),
        (.truncated(digest, path: "p", expected: 2, actual: 1), EIO),
        (.corruptUpload(id: "u", reason: "r"), EIO),
        (.changed(digest, path: "p"), EIO),
        (.notRegularFile(digest, path: "p"), EIO),
        (.uploadClosed("u"), EBADF),
        (.unsupported("delete"), EPERM),
        (.io(operation: "write", path: "p", errno: ENOSPC), ENOSPC),
        // A symbolic link planted in the store reads as an I/O error.
        (.io(operation: "open", path: "p", errno: ELOOP), EIO),
    ])
    func storageErrorsHaveTheirErrno(error: BlobError, code: Int32) {
        #expect(errnoValue(for: .storage(error, operation: "test")) == code)
    }

    @Test func driverErrorsThatReachTheFilesystemHaveTheirErrno() {
        #expect(errnoValue(for: .storage(StorageDriverError.pathNotFound("p"), operation: "t")) == ENOENT)
        #expect(errnoValue(for: .storage(StorageDriverError.io(operation: "o", path: "p", errno: ENOSPC), operation: "t")) == ENOSPC)
        #expect(errnoValue(for: .storage(StorageDriverError.isDirectory("p"), operation: "t")) == EIO)
    }

    @Test func onlyNoSuchNameGoesUnlogged() {
        #expect(!isWorthLogging(ENOENT))
        #expect(isWorthLogging(EIO))
        #expect(FileSystemError.noEntry.logLine == nil)
        #expect(FileSystemError.storage(BlobError.unsupported("x"), operation: "unlink a").logLine?.hasPrefix("unlink a: ") == true)
    }
}
