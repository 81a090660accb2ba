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
}

/// The attributes the filesystem reports; directories and blobs are read-only.
struct NodeAttributes: Sendable {
    var size: Int64 = 0
    var modified: Int64
    var descriptor: Descriptor?

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
        case .root, .directory:
            st.st_mode = S_IFDIR | 0o555
            st.st_nlink = 2
            st.st_blksize = 4096
        }
        return st
    }
}
