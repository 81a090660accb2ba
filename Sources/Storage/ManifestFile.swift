import Distribution

/// A manifest revision of a repository as storage has it now: its digest, its data file's size
/// and modification time, and which link tree names it.
public struct ManifestFile: Sendable, Hashable {
    public var digest: Digest
    /// The data file's size in bytes.
    public var size: Int64
    /// The data file's modification time, seconds since the epoch.
    public var modified: Int64
    /// `.manifestRevisions` for every manifest written since registry 2.1.1; `.layers` for one
    /// that only a 2.1.0 registry's `_layers` link names (`ManifestStore.linkTarget`).
    public var linkSet: LinkSet

    public init(digest: Digest, size: Int64, modified: Int64, linkSet: LinkSet) {
        self.digest = digest
        self.size = size
        self.modified = modified
        self.linkSet = linkSet
    }
}

/// One `_manifests/revisions/<alg>/<hex>/link` of a repository, as a listing found it.
public struct ManifestRevision: Sendable, Hashable {
    public var digest: Digest
    /// The revision's data file, or why the revision is damaged (a corrupt link, a data file
    /// that is not a regular file, an unreadable file). Revisions that read as absent (an empty
    /// link, a link whose data is gone) are not listed at all.
    public var file: Result<ManifestFile, BlobError>

    public init(digest: Digest, file: Result<ManifestFile, BlobError>) {
        self.digest = digest
        self.file = file
    }
}
