import Distribution
import Storage

/// Why a FUSE operation failed: every operation throws only this, and `errnoValue(for:)` is the
/// one table that turns it into the errno the kernel hands to the caller.
///
/// The cases without a payload are the filesystem's own refusals, decided from the tree and the
/// mount's mode; operations log their reason (where one helps a user) before throwing. Errors
/// from storage and from the naming rules keep what went wrong, and are logged with their
/// context by the request shell that replies.
enum FileSystemError: Error, Sendable {
    /// No such name, inode or upload.
    case noEntry
    /// A name looked up in, or listed from, something that is not a directory.
    case notADirectory
    /// A directory opened as a file.
    case isADirectory
    /// A mutation on a read-only mount.
    case readOnlyMount
    /// Something the store cannot hold or never changes: a file outside `blobs/`, a rename or
    /// write of a blob, a delete without `--allow-delete`, a repository removed.
    case notPermitted
    /// mkdir of a name that exists.
    case exists
    /// An argument the operation cannot take: RENAME_EXCHANGE, a truncation of a blob, an invalid
    /// repository name component.
    case invalidArgument
    /// A file handle that is not (or no longer) the kind the operation needs.
    case badHandle
    /// A blob name the kernel held that its repository no longer links as it did: the kernel
    /// looks the path up again.
    case staleName
    /// An upload in progress opened for reading: nothing unverified is readable.
    case uploadNotReadable
    /// An extended attribute larger than the caller's buffer.
    case bufferTooSmall
    /// No extended attribute of that name.
    case noSuchAttribute
    /// A namespace of extended attributes that does not exist here (only `user.*` does).
    case attributeNotSupported
    /// A blob that failed verification in this version of its data file (already logged).
    case blobRefused
    /// A blob opened for writing (an identical rewrite) while readers kept it open through
    /// passthrough past the wait for them (already logged): the kernel refuses a write open of
    /// an inode it reads through passthrough.
    case busyWithReaders
    /// A name just written (a blob committed by mknod, a directory by mkdir) is not in the store
    /// when looked up right after: something else changed the store meanwhile.
    case vanishedAfterWrite(operation: String)
    /// A request that an operation's shell dropped without answering (a bug): FuseRequest's
    /// deinit answers it with this rather than leave its caller waiting for ever.
    case notAnswered
    /// Storage failed, or refused, while doing `operation`.
    case storage(BlobError, operation: String)
    /// A new file's name that can never become a blob.
    case refusedName(UploadName.Refusal, operation: String)
    /// An operation whose result no registry store could hold (symlink, mknod of a FIFO, …).
    case refusedWrite(WriteRefusal, operation: String)
    /// A file in `tags/` whose content cannot be a tag (neither a digest nor a manifest), at its
    /// close or its rename onto a tag.
    case refusedTagFile(TagFileContentError, operation: String)

    /// Runs a storage call; what it throws becomes `.storage` with `operation` as its context.
    static func storage<T>(_ operation: @autoclosure () -> String, _ body: () throws(BlobError) -> T) throws(FileSystemError) -> T {
        do {
            return try body()
        } catch {
            throw .storage(error, operation: operation())
        }
    }

    /// The line the request shell logs, with the operation it failed in; nil for the refusals
    /// whose reason the operation logged itself, or that need no line.
    var logLine: String? {
        switch self {
        case .storage(let error, let operation): "\(operation): \(error)"
        case .refusedName(let refusal, let operation): "\(operation): \(refusal)"
        case .refusedWrite(let refusal, let operation): "\(operation): \(refusal)"
        case .refusedTagFile(let refusal, let operation): "\(operation): \(refusal)"
        case .vanishedAfterWrite(let operation): "\(operation): the name written is not in the store any more"
        default: nil
        }
    }
}
