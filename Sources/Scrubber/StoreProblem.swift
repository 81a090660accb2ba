import Distribution
import Storage
import StorageDriver

/// One thing wrong in a registry store, as `blobfs verify` prints it: kind, file, and what is wrong.
public struct StoreProblem: Sendable, Hashable, CustomStringConvertible {
    /// What is wrong; the raw value starts the problem's line.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A blob's data does not hash to the digest it is stored under.
        case corruptData = "corrupt data"
        /// A link whose blob directory is there but whose data file is missing.
        case missingData = "missing data"
        /// A link whose data file is there but is a symbolic link, a directory, a FIFO, a device or a
        /// socket: the mount never serves it.
        case notARegularFile = "not a regular file"
        /// A data or link file that cannot be read (an I/O error).
        case unreadable = "unreadable"
        /// A link file whose content is not a sha256 digest, or that is not a regular file.
        case garbageLink = "garbage link"
        /// An empty link file, as an interrupted write leaves it: the blob reads as absent.
        case emptyLink = "empty link"
        /// A link that names one blob and holds another, so a reader would get the wrong bytes.
        case wrongLink = "wrong link"
        /// A link whose whole blob directory is gone. A registry 2.x garbage collection leaves these
        /// by design; the registry and blobfs show such a blob as absent.
        case linkToDeletedBlob = "link to a deleted blob"
        /// A directory of the store that the scrub could not enter: a symbolic link (never
        /// followed), something that is not a directory, or one it cannot open or list. Nothing
        /// below it was checked, so the store cannot be called intact.
        case unreachable = "unreachable"
    }

    public var kind: Kind
    /// The file at fault: a blob's `data` file, a repository's `link` file, or a directory that
    /// could not be entered.
    public var path: DriverPath
    /// The repository of a link problem.
    public var repository: RepositoryName?
    /// The digest the file is stored under: the content address of data, the name of a link; nil
    /// for a directory above any one digest (`_layers`, `blobs/sha256`).
    public var digest: Digest?
    /// What is wrong, with the digests involved.
    public var detail: String
    /// The data file a link problem is about (missing data), printed after the detail.
    public var dataPath: DriverPath?

    public init(
        kind: Kind, path: DriverPath, repository: RepositoryName? = nil, digest: Digest?, detail: String,
        dataPath: DriverPath? = nil
    ) {
        self.kind = kind
        self.path = path
        self.repository = repository
        self.digest = digest
        self.detail = detail
        self.dataPath = dataPath
    }

    /// `<kind>: <path>: <detail>[: <data path>]`, paths prefixed with `root` (the storage root on disk).
    public func line(root: String = "") -> String {
        "\(kind.rawValue): \(root)\(path.value): \(detail)" + (dataPath.map { ": \(root)\($0.value)" } ?? "")
    }

    public var description: String { line() }
}

/// What a scrub checked and found.
public struct ScrubReport: Sendable {
    /// Every problem, in the order found.
    public var problems: [StoreProblem] = []
    /// Blob data files re-hashed.
    public var blobsChecked = 0
    public var bytesHashed: Int64 = 0
    public var repositoriesChecked = 0
    public var linksChecked = 0

    public init() {}

    public var isIntact: Bool { problems.isEmpty }

    public func count(_ kind: StoreProblem.Kind) -> Int {
        problems.count(where: { $0.kind == kind })
    }
}

/// Where a scrub is, for a progress display.
public struct ScrubProgress: Sendable {
    public enum Phase: Sendable { case blobs, links }
    public var phase: Phase = .blobs
    public var blobsChecked = 0
    /// Blob data files to re-hash in the blob phase (the whole store); 0 when checking one repository.
    public var blobsTotal = 0
    public var bytesHashed: Int64 = 0
    public var bytesTotal: Int64 = 0
    public var repositoriesChecked = 0
    public var repositoriesTotal = 0
    public var linksChecked = 0
    /// The repository whose links are being checked.
    public var repository: RepositoryName?
}

/// Why a scrub could not run at all (problems in the store are reported, not thrown).
public enum ScrubError: Error, Sendable, Hashable, CustomStringConvertible {
    case repositoryNotFound(RepositoryName)

    public var description: String {
        switch self {
        case .repositoryNotFound(let name): "no repository \(name) in the store (no \(PathMapper.path(.layers(name))) directory)"
        }
    }
}
