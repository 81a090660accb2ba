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

    /// The directory of this set's links of one algorithm: a link is `PathMapper.link(below:)`
    /// there.
    public func directory(_ name: RepositoryName, _ algorithm: DigestAlgorithm) -> DriverPath {
        switch self {
        case .layers: PathMapper.path(.layerLinks(name, algorithm))
        case .manifestRevisions: PathMapper.path(.manifestRevisionLinks(name, algorithm))
        }
    }

    public func path(_ name: RepositoryName, _ digest: Digest) -> DriverPath {
        switch self {
        case .layers: PathMapper.path(.layerLink(name, digest))
        case .manifestRevisions: PathMapper.path(.manifestRevisionLink(name, digest))
        }
    }
}
