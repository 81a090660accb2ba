import Distribution
import Storage

/// One open blob file: its reader (size already known) and, unless the blob was verified before
/// in this mount, a verifier. Passed to the kernel as the file handle.
final class OpenBlob: Sendable {
    let inode: UInt64
    let reader: DataFileReader
    let verifier: ReadVerifier?

    init(inode: UInt64, reader: DataFileReader, verify: Bool) {
        self.inode = inode
        self.reader = reader
        self.verifier = verify ? ReadVerifier(descriptor: reader.descriptor) : nil
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
