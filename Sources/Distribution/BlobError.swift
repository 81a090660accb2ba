/// Every way a blob operation fails; the filesystem maps these to errno in one place.
public enum BlobError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No such blob in this scope (no link, no data, or an empty link file).
    case unknown(Digest)
    /// A string that is not a valid digest.
    case invalidDigestString(DigestError)
    /// Content that does not match its digest, or a digest that cannot be verified.
    case invalidDigest(Digest, reason: String)
    /// The declared size does not match the bytes written.
    case invalidLength(expected: Int64, actual: Int64)
    /// No upload with this id in this repository.
    case uploadUnknown(String)
    /// The upload takes no more bytes or commits here: it was committed, released by `close` for a
    /// later resume, or is being committed. (A cancelled upload is gone: `uploadUnknown`.)
    case uploadClosed(String)
    /// An upload directory that cannot be resumed (an unreadable `startedat`, a directory for `data`).
    case corruptUpload(id: String, reason: String)
    /// A repository name outside the grammar `RepositoryName` accepts (docs/storage-format.md,
    /// Repository names).
    case invalidRepositoryName(String, reason: String)
    /// A descriptor the cache refuses (`Descriptor.validate`: docs/storage-format.md, The
    /// descriptor cache).
    case invalidDescriptor(String)
    /// The operation is disabled or not supported by this store.
    case unsupported(String)
    /// A link file whose content is not a digest.
    case corruptLink(path: String, reason: String)
    /// The data file under a valid link is missing or is not a regular file.
    case dataMissing(Digest, path: String)
    /// The data file is shorter than the blob's known size (it shrank or was replaced).
    case truncated(Digest, path: String, expected: Int64, actual: Int64)
    /// The data file under a valid link is a directory, FIFO, device or socket: a damaged store.
    case notRegularFile(Digest, path: String)
    /// The data file was written or replaced while it was verified or served: what was checked
    /// is not known to be what would be served.
    case changed(Digest, path: String)
    /// The descriptor cache failed while forgetting a blob (Redis unreachable, an error reply),
    /// so storage was left alone (`CachedBlobStatter.clear`). The cache's other failures reach no
    /// caller: a stat falls back to storage, and a failed write-back is only logged.
    case cacheFailed(String)
    /// A storage failure, with the errno the operating system gave.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .unknown(let d): "unknown blob \(d)"
        case .invalidDigestString(let e): e.description
        case .invalidDigest(let d, let reason): "invalid digest \(d): \(reason)"
        case .invalidLength(let expected, let actual): "blob invalid length: expected \(expected) bytes, got \(actual)"
        case .uploadUnknown(let id): "blob upload unknown: \(quoted(id))"
        case .uploadClosed(let id): "blob upload \(id) is already committed or cancelled"
        case .corruptUpload(let id, let reason): "blob upload \(id) is corrupt: \(reason)"
        case .invalidRepositoryName(let name, let reason): "invalid repository name \(quoted(name)): \(reason)"
        case .invalidDescriptor(let reason): "invalid descriptor: \(reason)"
        case .unsupported(let what): "unsupported operation: \(what)"
        case .corruptLink(let path, let reason): "corrupt link file \(path): \(reason)"
        case .dataMissing(let d, let path): "data of blob \(d) is missing at \(path)"
        case .truncated(let d, let path, let expected, let actual):
            "data of blob \(d) at \(path) is \(actual) bytes, expected \(expected)"
        case .notRegularFile(let d, let path): "data of blob \(d) at \(path) is not a regular file"
        case .changed(let d, let path): "data of blob \(d) at \(path) changed while it was verified or served"
        case .cacheFailed(let reason): "descriptor cache failed: \(reason)"
        case .io(let operation, let path, let errno): "\(operation) \(path): \(errnoDescription(errno)) (errno \(errno))"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's text for an errno value.
public func errnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}
