import CFuse
import Glibc

/// The operations' answers in libfuse's structures: attributes with the mount's owner, and the
/// timeouts each kind of node gets (docs/architecture.md, "Kernel caching").
extension BlobFileSystem {
    func entryParameters(_ entry: EntryReply) -> fuse_entry_param {
        entryParameters(entry.ino, entry.node, entry.attributes)
    }

    func entryParameters(_ ino: UInt64, _ node: Node, _ attributes: NodeAttributes) -> fuse_entry_param {
        var entry = fuse_entry_param()
        entry.ino = ino
        entry.attr = shared(attributes.stat(ino: ino, node: node, owner: owner), node, attributes)
        entry.attr_timeout = timeout(for: node)
        entry.entry_timeout = timeout(for: node)
        return entry
    }

    /// A readdirplus entry: "." and ".." carry no attributes (inode 0: no lookup counted).
    func entryParameters(for entry: ListedEntry) -> fuse_entry_param {
        guard let node = entry.node, let attributes = entry.attributes else {
            var dot = fuse_entry_param()
            dot.attr.st_ino = UInt(entry.ino)
            dot.attr.st_mode = S_IFDIR
            return dot
        }
        return entryParameters(entry.ino, node, attributes)
    }

    /// A readdir entry: only the inode number and the type are used.
    func listingStat(for entry: ListedEntry) -> Glibc.stat {
        guard let node = entry.node, let attributes = entry.attributes else {
            var st = Glibc.stat()
            st.st_ino = UInt(entry.ino)
            st.st_mode = S_IFDIR
            return st
        }
        return shared(attributes.stat(ino: entry.ino, node: node, owner: owner), node, attributes)
    }

    func stat(_ reply: AttributesReply) -> Glibc.stat {
        shared(reply.attributes.stat(ino: reply.ino, node: reply.node, owner: owner), reply.node, reply.attributes)
    }

    /// A blob's attributes carry the numbers all its names share (SharedBlobs): one `st_ino` per
    /// blob, and its number of names as `st_nlink`.
    func shared(_ st: Glibc.stat, _ node: Node, _ attributes: NodeAttributes) -> Glibc.stat {
        guard options.hardLinks, case .blob = node, let canonical = attributes.descriptor?.digest else { return st }
        var st = st
        st.st_ino = UInt(SharedBlobs.inodeNumber(of: canonical))
        st.st_nlink = UInt(sharedBlobs.names(of: canonical))
        return st
    }

    /// An open's handle and caching flags, in the `fuse_file_info` libfuse replies with.
    func fill(_ file: UnsafeMutablePointer<fuse_file_info>, with reply: OpenReply) {
        file.pointee.fh = reply.handle
        if reply.keepCache { file.pointee.keep_cache = 1 }
        if reply.directIO { file.pointee.direct_io = 1 }
        // A passthrough file's pages are the data file's own; keep_cache is refused beside it.
        // noflush: a reader's close(2) needs no daemon, so it succeeds even after the daemon died.
        if reply.backingID != nil {
            file.pointee.keep_cache = 0
            file.pointee.noflush = 1
        }
    }
}
