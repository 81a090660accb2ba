import Glibc

/// Operations a read-write mount refuses because nothing in a registry's store could hold their
/// result. `errnoValue` makes every one EPERM ("not permitted here"), which is what the kernel
/// would say for an operation the filesystem does not allow; the description is the log line.
enum WriteRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// `ln -s`: a store has no symbolic links (and follows none).
    case symbolicLink(name: String)
    /// `mkfifo`, `mknod` of a device, a socket: only regular files can become blobs.
    case specialFile(name: String, mode: mode_t)
    /// An upload renamed to another temporary name: no tool we support does that (rsync, cp and
    /// tar never do; see UploadName), and the upload would only move, never commit.
    case renameToTemporaryName(from: String, to: String)
    /// An upload renamed into another directory: it belongs to the repository it was created in
    /// (its data is in that repository's `_uploads`). Not EXDEV: mv would then fall back to
    /// copying, and an upload cannot be read (nothing unverified is readable), so mv would fail
    /// with a misleading EACCES instead.
    case renameOutOfItsDirectory(name: String, from: String, to: String)

    var description: String {
        switch self {
        case .symbolicLink(let name):
            "refusing a symbolic link \(name.debugDescription): a registry's store holds only blobs, which are regular files"
        case .specialFile(let name, let mode):
            "refusing to make \(Self.kind(of: mode)) \(name.debugDescription): only regular files can become blobs"
        case .renameToTemporaryName(let from, let to):
            "refusing to rename the upload \(from.debugDescription) to \(to.debugDescription): an upload can only be renamed "
                + "to the digest of its content, which commits it"
        case .renameOutOfItsDirectory(let name, let from, let to):
            "refusing to move the upload \(name.debugDescription) from \(from) to \(to): an upload can only be renamed to its "
                + "digest in the blobs/ directory it was created in (write the file there instead)"
        }
    }

    static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFDIR: "a directory"
        case S_IFLNK: "a symbolic link"
        default: "a file of type \(String(mode & S_IFMT, radix: 8))"
        }
    }
}
