import Distribution

/// A repository of a registry: its name and its blobs.
public struct Repository: Sendable {
    public let name: RepositoryName
    /// Blobs linked in this repository (`_layers`).
    public let blobs: LinkedBlobStore
}
