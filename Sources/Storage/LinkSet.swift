import Distribution
import StorageDriver

/// Where a repository keeps one kind of link: blob links under `_layers`, manifest links under
/// `_manifests/revisions`.
public enum LinkSet: Sendable, Hashable {
    case layers
    case manifestRevisions

    /// The directory holding this set's `<alg>/<hex>/link` files.
    public func root(_ name: RepositoryName) -> DriverPath {
        switch self {
        case .layers: PathMapper.path(.layers(name))
        case .manifestRevisions: PathMapper.path(.manifestRevisions(name))
        }
    }

    public func path(_ name: RepositoryName, _ digest: Digest) -> DriverPath {
        switch self {
        case .layers: PathMapper.path(.layerLink(name, digest))
        case .manifestRevisions: PathMapper.path(.manifestRevisionLink(name, digest))
        }
    }
}
