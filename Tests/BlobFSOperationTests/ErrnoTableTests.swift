@testable import BlobFS
import Distribution
import Glibc
import Storage
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
        (.busyWithReaders, EBUSY),
        (.refusedTagFile(.notADigestOrManifest(reason: "not a JSON object"), operation: "close of app/tags/v1"), EINVAL),
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
        (.cacheFailed("clear"), EIO),
        (.io(operation: "write", path: "p", errno: ENOSPC), ENOSPC),
        // A symbolic link planted in the store reads as an I/O error.
        (.io(operation: "open", path: "p", errno: ELOOP), EIO),
    ])
    func storageErrorsHaveTheirErrno(error: BlobError, code: Int32) {
        #expect(errnoValue(for: .storage(error, operation: "test")) == code)
    }

    /// Driver errors reach the filesystem only through Storage's one translation,
    /// `StorageDriverError.blobError`: each case keeps what it says as an errno.
    @Test(arguments: [
        (StorageDriverError.pathNotFound("p"), BlobError.io(operation: "open", path: "p", errno: ENOENT), ENOENT),
        (.isDirectory("p"), .io(operation: "open", path: "p", errno: EISDIR), EISDIR),
        (.tooLarge("p", size: 2, limit: 1), .io(operation: "read", path: "p", errno: EFBIG), EFBIG),
        (.io(operation: "write", path: "p", errno: ENOSPC), .io(operation: "write", path: "p", errno: ENOSPC), ENOSPC),
        // A symbolic link is refused (ELOOP), and a mount reports it as an I/O error.
        (.symlinkRefused("p"), .io(operation: "resolve (symbolic links are not followed)", path: "p", errno: ELOOP), EIO),
        (.invalidPath("p"), .io(operation: "resolve", path: "p", errno: EINVAL), EINVAL),
    ])
    func eachDriverErrorIsTranslatedOnceAndKeepsItsErrno(driverError: StorageDriverError, blobError: BlobError, code: Int32) {
        #expect(driverError.blobError == blobError)
        #expect(errnoValue(for: .storage(driverError.blobError, operation: "t")) == code)
    }

    /// Where Storage gives a missing path a meaning (no link, no data file), it is the blob's
    /// `unknown`, which a mount answers with ENOENT, as the registry answers ErrBlobUnknown.
    @Test func aMissingBlobIsUnknownNotAMissingPath() throws {
        let registry = Registry(driver: InMemoryDriver())
        let repository = try registry.repository("a/b")
        let d = Self.digest
        func expectUnknown(_ call: () throws(BlobError) -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
            do throws(BlobError) {
                try call()
                Issue.record("a missing blob was found", sourceLocation: sourceLocation)
            } catch {
                #expect(error == .unknown(d), sourceLocation: sourceLocation)
                #expect(errnoValue(for: .storage(error, operation: "t")) == ENOENT, sourceLocation: sourceLocation)
            }
        }
        expectUnknown { () throws(BlobError) in _ = try repository.blobs.stat(d) }
        expectUnknown { () throws(BlobError) in _ = try repository.blobs.linkTarget(d) }
        expectUnknown { () throws(BlobError) in _ = try registry.blobStore.get(d) }
        expectUnknown { () throws(BlobError) in _ = try registry.blobStore.dataFile(d) }
    }

    @Test func onlyNoSuchNameGoesUnlogged() {
        #expect(!isWorthLogging(ENOENT))
        #expect(isWorthLogging(EIO))
        #expect(FileSystemError.noEntry.logLine == nil)
        #expect(FileSystemError.storage(BlobError.unsupported("x"), operation: "unlink a").logLine?.hasPrefix("unlink a: ") == true)
    }
}
