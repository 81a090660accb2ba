/// How a mount behaves: kernel cache timeouts, verification, threads, extra FUSE options.
public struct MountOptions: Sendable {
    /// The storage root, shown as the mount's source (`fsname`) and used for `statfs`.
    public var storageRoot: String
    /// Extra FUSE mount options (`allow_other`, `default_permissions`, …), without `-o`.
    public var fuseOptions: [String] = []
    /// Entry and attribute timeout of blob files, in seconds. A blob's bytes never change for its
    /// name, but its repository may stop linking it: after this long the kernel asks again (an
    /// open re-checks the link whatever this is).
    public var blobTimeout: Double = 60
    /// Entry and attribute timeout of directories: a live registry adds blobs under our feet.
    public var directoryTimeout: Double = 1
    /// How long the kernel remembers that a name does not exist.
    public var negativeTimeout: Double = 1
    /// Check each blob name's bytes against the name before serving any of them: the first read
    /// after an open (the open itself, where passthrough applies) hashes the whole data file with
    /// the name's algorithm, unless that name was
    /// already checked in the same data file version, in this mount or (a ledger) an earlier one
    /// (`FirstReadVerifier`; concurrent first readers wait for one pass). A mismatch fails that read,
    /// and every later open and read of that version, with EIO. `--no-verify` turns this off.
    public var verifyReads = true
    /// libfuse worker threads at most.
    public var maxThreads = 10
    /// Accept writes: blobs created under `repo/<name>/blobs/` are verified and committed.
    public var readWrite = false
    /// Let `unlink` remove a repository's link to a blob (read-write mounts only).
    public var allowDelete = false
    /// Show `oci/<name>/`: each repository as a read-only OCI image layout.
    public var ociView = false
    /// Show every name of a blob with one inode number and the blob's number of names as
    /// `st_nlink` (SharedBlobs), so that `rsync -aH`, `cp -a`, `tar` and `du` keep a shared layer
    /// once: part of the tree's contract (issue 12), so on by default. Counting the names lists
    /// every repository's `_layers` once per mount (measured in docs/architecture.md, "Inodes").
    public var hardLinks = true
    /// Kernel FUSE passthrough for reads of verified local blobs (`--passthrough`; docs/architecture.md,
    /// "Passthrough").
    public var passthrough: PassthroughMode = .auto
    /// Kernel readahead for the mount in KiB (bigger requests); nil leaves the kernel's default.
    public var readAheadKiB: Int? = 1024

    public init(storageRoot: String) {
        self.storageRoot = storageRoot
    }
}
