import Distribution
import Storage
import Synchronization

/// One open blob file: its reader, whose size is already known. Passed to the kernel as the
/// file handle.
final class OpenBlob: Sendable {
    let inode: UInt64
    let reader: DataFileReader
    /// Whether the blob must still be checked before its bytes are served.
    let needsCheck: Atomic<Bool>

    init(inode: UInt64, reader: DataFileReader, needsCheck: Bool) {
        self.inode = inode
        self.reader = reader
        self.needsCheck = Atomic(needsCheck)
    }
}

/// A directory listing taken at opendir, served by offset to readdir and readdirplus.
final class OpenDirectory: Sendable {
    let inode: UInt64
    let entries: [Namespace.Entry]

    init(inode: UInt64, entries: [Namespace.Entry]) {
        self.inode = inode
        self.entries = entries
    }
}

/// A file open for writing on a read-write mount: an upload, or a rewrite of an existing blob.
final class OpenWrite: Sendable {
    enum Target: Sendable {
        case upload(PendingUpload)
        case rewrite(IdenticalRewrite)
    }

    let target: Target

    init(_ target: Target) { self.target = target }
}
