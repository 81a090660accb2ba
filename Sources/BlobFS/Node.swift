import Distribution
import Glibc

/// What an inode stands for.
enum Node: Hashable, Sendable {
    /// The mount's root: holds `repo/`.
    case root
    /// A directory under `repo/`: `path` is the name so far ("" is `repo/` itself, then
    /// `team`, `team/app`, `team/app/blobs`, …).
    case directory(path: String)
    /// A blob file, identified by its canonical digest: every name of a blob (in any repository,
    /// sha256 or an alias) is the same inode, so the page cache holds its bytes once.
    case blob(Digest)
    /// A file being written (read-write mounts): an upload in progress, by its serial number.
    case upload(UInt64)
}

/// The attributes the filesystem reports; blobs are read-only by definition.
struct NodeAttributes: Sendable {
    var size: Int64 = 0
    var modified: Int64
    var descriptor: Descriptor?
    /// Directories of a read-write mount are writable (0755), of a read-only one 0555.
    var writableDirectories = false

    func stat(ino: UInt64, node: Node, owner: (uid: uid_t, gid: gid_t)) -> Glibc.stat {
        var st = Glibc.stat()
        st.st_ino = UInt(ino)
        st.st_uid = owner.uid
        st.st_gid = owner.gid
        st.st_mtim.tv_sec = Int(modified)
        st.st_ctim.tv_sec = Int(modified)
        st.st_atim.tv_sec = Int(modified)
        switch node {
        case .blob:
            st.st_mode = S_IFREG | 0o444
            st.st_nlink = 1
            st.st_size = Int(size)
            st.st_blocks = Int((size + 511) / 512)
            st.st_blksize = 1 << 20  // coreutils size their copy buffer from this
        case .upload:
            st.st_mode = S_IFREG | 0o644
            st.st_nlink = 1
            st.st_size = Int(size)
            st.st_blocks = Int((size + 511) / 512)
            st.st_blksize = 1 << 20
        case .root, .directory:
            st.st_mode = S_IFDIR | (writableDirectories ? 0o755 : 0o555)
            st.st_nlink = 2
            st.st_blksize = 4096
        }
        return st
    }
}
