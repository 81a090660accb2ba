import Distribution
import Glibc
import Storage

/// What an inode stands for.
enum Node: Hashable, Sendable {
    /// The mount's root: holds `repo/`.
    case root
    /// A directory under `repo/`: `path` is the name so far ("" is `repo/` itself, then
    /// `team`, `team/app`, `team/app/blobs`, …).
    case directory(path: String)
    /// A blob file: a digest name in one repository. Each name is its own inode, so that an open
    /// knows which repository's link to re-check (a blob removed from one repository must stop
    /// being readable there) and which digest the bytes must hash to (an alias name is hashed
    /// with its own algorithm). Verification is shared by every name of a data file version.
    case blob(BlobName)
    /// A file being written (read-write mounts): an upload in progress, by its serial number.
    case upload(UInt64)
    /// A manifest revision of a repository, `<name>/manifests/sha256:<hex>`: a file of the
    /// manifest's bytes, verified as a blob's are.
    case manifest(BlobName)
    /// A tag of a repository, `<name>/tags/<tag>`, as it was read naming `manifest`: a symbolic
    /// link to `../manifests/<manifest>`. The target is part of the node, so a tag that moves is
    /// another inode at its next lookup or listing, and an inode's target never changes: the
    /// kernel may keep it in its page cache (FUSE_CAP_CACHE_SYMLINKS) for as long as it keeps the
    /// inode (docs/architecture.md, "Kernel caching").
    case tag(TagName, manifest: Digest)
    /// A symbolic link in `tags/` under a temporary name, waiting for its rename onto a tag
    /// (PendingLinks), by its serial number.
    case pendingLink(UInt64)
    /// A directory of the OCI layout view (`--oci`): `path` is the names shown below `oci/`
    /// ("" is `oci/` itself).
    case ociDirectory(path: String)
    /// A file of the OCI layout view that blobfs writes itself.
    case ociFile(OCIFile)
}

/// The files of a repository's OCI layout that are not blobs.
enum OCIFile: Hashable, Sendable {
    case layout(RepositoryName)
    case index(RepositoryName)
}

/// A tag's name: the repository and the tag.
struct TagName: Hashable, Sendable, CustomStringConvertible {
    var repository: RepositoryName
    var tag: Tag

    var description: String { "\(repository)/tags/\(tag)" }
}

/// A blob file's name: the repository that links it and the digest it is named by (sha256, or
/// an alias such as sha512 whose link holds the canonical sha256 digest).
struct BlobName: Hashable, Sendable, CustomStringConvertible {
    var repository: RepositoryName
    var digest: Digest

    var description: String { "\(repository)/blobs/\(digest)" }
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
        case .blob, .manifest, .upload:
            // Blobs and manifests never change (0444); an upload is being written (0644).
            if case .upload = node { st.st_mode = S_IFREG | 0o644 } else { st.st_mode = S_IFREG | 0o444 }
            st.st_nlink = 1
            st.st_size = Int(size)
            st.st_blocks = Int((size + 511) / 512)
            st.st_blksize = 1 << 20  // coreutils size their copy buffer from this
        case .tag, .pendingLink:
            // A symbolic link's size is the length of its target, as on any filesystem.
            st.st_mode = S_IFLNK | 0o777
            st.st_nlink = 1
            st.st_size = Int(size)
        case .ociFile:
            st.st_mode = S_IFREG | 0o444
            st.st_nlink = 1
            st.st_size = Int(size)
            st.st_blksize = 4096
        case .root, .directory, .ociDirectory:
            st.st_mode = S_IFDIR | (writableDirectories ? 0o755 : 0o555)
            st.st_nlink = 2
            st.st_blksize = 4096
        }
        return st
    }
}
