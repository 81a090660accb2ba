import Distribution

/// One link file of a repository as it is on disk: the digest it is filed under and the blob it
/// names (the canonical digest; an alias link names another algorithm's digest).
public struct RepositoryLink: Sendable {
    public var digest: Digest
    /// The digest the link holds; nil for an empty link (an interrupted write: the blob reads as
    /// absent); an error for a corrupt or unreadable link.
    public var target: Result<Digest?, BlobError>
}
