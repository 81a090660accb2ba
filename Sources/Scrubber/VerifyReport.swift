import Distribution
import FoundationEssentials
import Storage

/// What `blobfs verify --format json` writes: one document a backup job can act on. Every
/// problem carries its kind, repository, digest and path (null where the problem has none),
/// store problems first in the order found, then incomplete images. Keys are sorted, so two runs
/// over the same store give the same bytes.
public struct VerifyReport: Sendable, Encodable {
    /// The kind of an image `--images` found incomplete (not a `StoreProblem.Kind`: no one file is at fault).
    public static let incompleteImageKind = "incomplete image"

    public struct Counts: Sendable, Encodable {
        public var blobsChecked: Int
        public var bytesHashed: Int64
        public var linksChecked: Int
        public var repositoriesChecked: Int
        /// Tagged images checked; null without `--images`.
        public var imagesChecked: Int?
        /// Every problem reported, and those that fail the run (links to deleted blobs do not with
        /// `--ignore-deleted-blob-links`).
        public var problems: Int
        public var failing: Int
        /// Problems of each kind, every kind present (0 when none); `incomplete image` only with `--images`.
        public var byKind: [String: Int]

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(blobsChecked, forKey: .blobsChecked)
            try container.encode(bytesHashed, forKey: .bytesHashed)
            try container.encode(linksChecked, forKey: .linksChecked)
            try container.encode(repositoriesChecked, forKey: .repositoriesChecked)
            try container.encode(imagesChecked, forKey: .imagesChecked)
            try container.encode(problems, forKey: .problems)
            try container.encode(failing, forKey: .failing)
            try container.encode(byKind, forKey: .byKind)
        }

        enum CodingKeys: String, CodingKey {
            case blobsChecked, bytesHashed, linksChecked, repositoriesChecked, imagesChecked, problems, failing, byKind
        }
    }

    public struct Problem: Sendable, Encodable {
        public var kind: String
        public var repository: String?
        public var digest: String?
        /// The file at fault, under the storage root: a data file, a link file, or a directory
        /// that could not be entered; null for an incomplete image.
        public var path: String?
        /// The data file a link problem is about (missing data, not a regular file).
        public var dataPath: String?
        /// An incomplete image's tag; null otherwise.
        public var tag: String?
        /// What is wrong, as the text line says it (for an incomplete image, its missing parts joined by "; ").
        public var detail: String
        /// An incomplete image's missing parts, one each; null otherwise.
        public var missing: [String]?
        /// Whether it fails the run (the exit status).
        public var failing: Bool

        public func encode(to encoder: any Encoder) throws {
            // Explicit nulls: a job reads the same keys in every problem.
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(repository, forKey: .repository)
            try container.encode(digest, forKey: .digest)
            try container.encode(path, forKey: .path)
            try container.encode(dataPath, forKey: .dataPath)
            try container.encode(tag, forKey: .tag)
            try container.encode(detail, forKey: .detail)
            try container.encode(missing, forKey: .missing)
            try container.encode(failing, forKey: .failing)
        }

        enum CodingKeys: String, CodingKey { case kind, repository, digest, path, dataPath, tag, detail, missing, failing }
    }

    /// What the run did to a verification ledger (`--remember-verified`).
    public struct Ledger: Sendable, Encodable {
        public var path: String
        /// Corrupt blobs taken out of it.
        public var forgotten: Int

        public init(path: String, forgotten: Int) {
            self.path = path
            self.forgotten = forgotten
        }
    }

    public var storageRoot: String
    /// The repository checked alone (`--repository`); null for the whole store.
    public var repository: String?
    /// No failing problem and no incomplete image: exit status 0.
    public var intact: Bool
    public var counts: Counts
    public var problems: [Problem]
    public var ledger: Ledger?

    public init(
        storageRoot: String, repository: RepositoryName?, scrub: ScrubReport, images: ImageCheckReport?,
        ignoringDeletedBlobLinks: Bool, ledger: Ledger?
    ) {
        let stored = scrub.problems.map { problem in
            Problem(
                kind: problem.kind.rawValue, repository: problem.repository?.value, digest: problem.digest?.description,
                path: storageRoot + problem.path.value, dataPath: problem.dataPath.map { storageRoot + $0.value }, tag: nil,
                detail: problem.detail, missing: nil, failing: !(ignoringDeletedBlobLinks && problem.kind == .linkToDeletedBlob))
        }
        let incomplete = (images?.incomplete ?? []).map { image in
            Problem(
                kind: Self.incompleteImageKind, repository: image.repository.value, digest: image.manifest.description, path: nil,
                dataPath: nil, tag: image.tag.description, detail: image.missing.joined(separator: "; "), missing: image.missing,
                failing: true)
        }
        problems = stored + incomplete
        var byKind = Dictionary(uniqueKeysWithValues: StoreProblem.Kind.allCases.map { ($0.rawValue, scrub.count($0)) })
        if let images { byKind[Self.incompleteImageKind] = images.incomplete.count }
        let failing = problems.count(where: \.failing)
        counts = Counts(
            blobsChecked: scrub.blobsChecked, bytesHashed: scrub.bytesHashed, linksChecked: scrub.linksChecked,
            repositoriesChecked: scrub.repositoriesChecked, imagesChecked: images?.images, problems: problems.count,
            failing: failing, byKind: byKind)
        self.storageRoot = storageRoot
        self.repository = repository?.value
        intact = failing == 0
        self.ledger = ledger
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(storageRoot, forKey: .storageRoot)
        try container.encode(repository, forKey: .repository)
        try container.encode(intact, forKey: .intact)
        try container.encode(counts, forKey: .counts)
        try container.encode(problems, forKey: .problems)
        try container.encode(ledger, forKey: .ledger)
    }

    enum CodingKeys: String, CodingKey { case storageRoot, repository, intact, counts, problems, ledger }

    /// The document: pretty-printed, keys sorted, slashes as they are; no trailing newline.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}
