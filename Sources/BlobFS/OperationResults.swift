/// What the operations decide, before anything is said to the kernel. The request shells
/// (RequestShells.swift) turn these into libfuse's structures and reply once; an answer the
/// kernel did not take (an interrupted request) is handed back to the matching `…NotDelivered`
/// so that what it gave away (a lookup count, a handle, an upload) is taken back.

/// A name resolved by lookup, mknod, mkdir or create: its inode, with one lookup counted for the
/// kernel.
struct EntryReply: Sendable {
    let ino: UInt64
    let node: Node
    let attributes: NodeAttributes
}

/// A node's attributes as getattr and setattr report them.
struct AttributesReply: Sendable {
    let ino: UInt64
    let node: Node
    let attributes: NodeAttributes
}

/// An open file or directory: its handle number and how the kernel may cache it.
struct OpenReply: Sendable {
    let handle: UInt64
    /// Keep the file's pages across opens (verified blobs only).
    var keepCache = false
    /// Bypass the page cache (everything written: nothing of an upload belongs there).
    var directIO = false
    /// The kernel reads the file itself through this backing id (passthrough): no READ reaches
    /// the daemon. Never with `keepCache`, which the kernel refuses beside it (EIO at open).
    var backingID: Int32? = nil
}

/// create: the new file's entry and its open handle, answered together.
struct CreateReply: Sendable {
    let entry: EntryReply
    let open: OpenReply
}

/// One entry of a listing as readdir serves it.
struct ListedEntry: Sendable {
    let name: String
    let ino: UInt64
    /// What the entry is; nil for "." and "..", whose attributes a listing does not give.
    let node: Node?
    let attributes: NodeAttributes?
    /// The offset the kernel passes to continue after this entry.
    let nextOffset: Int64
    /// readdirplus: the entry counts one lookup of `ino` (never for "." and "..").
    let countsLookup: Bool
}

/// An extended attribute's value or the list of names: the bytes, or only their size when the
/// caller asked how big a buffer to pass (size 0).
enum AttributeReply: Sendable, Equatable {
    case size(Int)
    case bytes([UInt8])
}

/// How many bytes libfuse lays out for one directory entry, so that readdir decides which
/// entries fit before the reply is made (libfuse's FUSE_DIRENT_ALIGN of the name's offset plus
/// its length; a unit test checks these against `fuse_add_direntry` and `fuse_add_direntry_plus`).
enum DirectoryEntrySize {
    /// `offsetof(struct fuse_dirent, name)`.
    static let plainHeader = 24
    /// `offsetof(struct fuse_direntplus, dirent.name)`: a `fuse_entry_out` (128 bytes) first.
    static let plusHeader = 152

    static func of(_ name: String, plus: Bool) -> Int {
        let length = (plus ? plusHeader : plainHeader) + name.utf8.count
        return (length + 7) & ~7
    }
}
