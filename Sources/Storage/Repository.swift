import Distribution

/// A repository of a registry: its name, its blobs, its manifests and its tags.
public struct Repository: Sendable {
    public let name: RepositoryName
    /// Blobs linked in this repository (`_layers`).
    public let blobs: LinkedBlobStore
    /// Manifest revisions (`_manifests/revisions`).
    public let manifests: ManifestStore
    /// Tags (`_manifests/tags`).
    public let tags: TagStore
}
