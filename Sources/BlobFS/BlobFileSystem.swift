import Distribution
import Glibc
import Logging
import Scrubber
import Storage
import Synchronization

/// The filesystem: `repo/<name>/blobs/<digest>` over a registry's storage, served to FUSE.
/// All state is immutable or behind a `Mutex`, so libfuse's worker threads share it freely.
///
/// Locks, and the order they nest in (docs/architecture.md, "Locking"): `inodes`, `uploads`,
/// `handles`, `buffers` and `notices` are leaves — each is held only to read or change its own
/// table, never while another lock is taken and never across I/O. An operation takes them one
/// after the other, never one inside another. The verifier's gate of a name is the one lock held
/// across disk I/O, on purpose (see FirstReadVerifier); an upload's locks are described at
/// `PendingUpload`.
public final class BlobFileSystem: Sendable {
    public let registry: Registry
    public let options: MountOptions
    let logger: Logger
    let tree: BlobTree
    /// The OCI layout view (`--oci`).
    let ociTree: OCILayoutTree
    let inodes: InodeTable
    let buffers = BufferPool(bufferSize: 1 << 20)
    /// Owner of every file: the store's owner (the storage root's, on a local filesystem).
    let owner: (uid: uid_t, gid: gid_t)
    /// Directories' times: the mount's start, so they stay stable for rsync within a mount.
    let mountTime: Int64
    /// Which blobs were checked against their digest in this mount, and how they fared.
    let verifier: FirstReadVerifier
    /// Kernel passthrough reads: what INIT negotiated and the backing files of open blobs.
    let passthrough: Passthrough
    /// Files being written (read-write mounts).
    let uploads = UploadTable()
    /// The media types the repositories' manifests give their blobs.
    let mediaTypes: ManifestMediaTypes
    /// The inode number and name count every blob's names share.
    let sharedBlobs: SharedBlobs
    /// What tags named when last read, for readlink within the tags' timeout.
    let tagTargets: RecentTagTargets
    /// Symbolic links made under temporary names in `tags/`, until their rename.
    let pendingLinks = PendingLinks()
    /// Sections of repositories made through this mount, hidden until a `mkdir` makes them.
    let unmadeSections = UnmadeSections()
    /// Open files and directories, by the handle number the kernel holds.
    let handles = HandleTable()
    /// Where notices to the kernel go: the mounted session's, set once mounted (a recorder in
    /// unit tests); nil before and after, when there is no kernel to tell.
    let notices = Mutex<(any KernelNotices)?>(nil)

    /// `ledger`: blobs verified by earlier mounts, trusted while their data file is unchanged.
    public init(
        registry: Registry, options: MountOptions, ledger: VerificationLedger? = nil, logger: Logger = Logger(label: "blobfs.fs")
    ) {
        self.registry = registry
        verifier = FirstReadVerifier(ledger: ledger)
        passthrough = Passthrough(mode: options.passthrough, logger: logger)
        tagTargets = RecentTagTargets(lifetime: options.directoryTimeout)
        sharedBlobs = SharedBlobs(registry: registry, logger: logger)
        mediaTypes = ManifestMediaTypes(registry: registry, lifetime: options.blobTimeout)
        self.options = options
        self.logger = logger
        let inodes = InodeTable(rootAttributes: NodeAttributes(modified: Int64(time(nil)), writableDirectories: options.readWrite))
        self.inodes = inodes
        tree = BlobTree(registry: registry, logger: logger) { inodes.attributes(of: .blob($0)) }
        ociTree = OCILayoutTree(registry: registry, logger: logger, indexLifetime: options.directoryTimeout)
        // The store's owner, so that the registry's user reads the mount as its own store.
        owner = registry.owner.map { ($0.user, $0.group) } ?? (getuid(), getgid())
        mountTime = inodes[InodeTable.rootID]!.attributes.modified
    }

    /// Cancels every upload still in progress: at unmount nothing half-written stays behind.
    func cancelUploads() {
        for upload in uploads.all() {
            upload.cancel(.unmount)
            uploads.remove(upload)
        }
    }
}
