import Distribution
import StorageDriver

/// One thing wrong in a registry store, as `blobfs verify` prints it: kind, file, and what is wrong.
public struct StoreProblem: Sendable, Hashable, CustomStringConvertible {
    /// What is wrong; the raw value starts the problem's line.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A blob's data does not hash to the digest it is stored under.
        case corruptData = "corrupt data"
        /// A link whose blob directory is there but whose data file is missing or not a regular file.
        case missingData = "missing data"
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
    }

    public var kind: Kind
    /// The file at fault: a blob's `data` file or a repository's `link` file.
    public var path: DriverPath
    /// The repository of a link problem.
    public var repository: RepositoryName?
    /// The digest the file is stored under: the content address of data, the name of a link.
    public var digest: Digest
    /// What is wrong, with the digests involved.
    public var detail: String
    /// The data file a link problem is about (missing data), printed after the detail.
    public var dataPath: DriverPath?

    public init(
        kind: Kind, path: DriverPath, repository: RepositoryName? = nil, digest: Digest, detail: String,
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

/// What a verification checked and found.
public struct StoreVerificationReport: Sendable {
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

/// Where a verification is, for a progress display.
public struct StoreVerificationProgress: Sendable {
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

/// Why a verification could not run at all (problems in the store are reported, not thrown).
public enum StoreVerificationError: Error, Sendable, Hashable, CustomStringConvertible {
    case repositoryNotFound(RepositoryName)

    public var description: String {
        switch self {
        case .repositoryNotFound(let name): "no repository \(name) in the store (no \(PathMapper.path(.layers(name))) directory)"
        }
    }
}

/// Re-hashes every blob and checks every repository's `_layers` links against the blobs they
/// name: what `blobfs verify` runs. It reads through the driver only, never through a cache, so it
/// sees the store as it is on disk.
public struct StoreVerifier: Sendable {
    public let registry: Registry

    public init(registry: Registry) {
        self.registry = registry
    }

    /// Verifies the whole store, or only `repository`: then only its links and the blobs they
    /// name are checked. Problems go to `onProblem` as they are found and into the report.
    public func verify(
        repository: RepositoryName? = nil, onProblem: (StoreProblem) -> Void = { _ in },
        onProgress: (StoreVerificationProgress) -> Void = { _ in }
    ) throws -> StoreVerificationReport {
        try withoutActuallyEscaping(onProblem) { onProblem in
            try withoutActuallyEscaping(onProgress) { onProgress in
                try verify(VerificationRun(driver: registry.driver, onProblem: onProblem, onProgress: onProgress), repository)
            }
        }
    }

    private func verify(_ run: VerificationRun, _ repository: RepositoryName?) throws -> StoreVerificationReport {
        let names: [RepositoryName]
        if let repository {
            guard (try? registry.driver.stat(PathMapper.path(.layers(repository))))?.isDirectory == true else {
                throw StoreVerificationError.repositoryNotFound(repository)
            }
            names = [repository]
        } else {
            try run.checkAllBlobs()
            names = try registry.repositories()
        }
        run.progress.phase = .links
        run.progress.repositoriesTotal = names.count
        for name in names {
            run.progress.repository = name
            run.onProgress(run.progress)
            try run.checkLinks(of: name)
            run.report.repositoriesChecked += 1
            run.progress.repositoriesChecked += 1
        }
        run.onProgress(run.progress)
        return run.report
    }
}

/// The mutable state of one verification: the report, what each blob turned out to be, and one
/// read buffer reused for every blob.
private final class VerificationRun {
    /// What re-hashing a blob's data found; each problem is reported once however many links name it.
    enum Outcome { case intact, damaged, vanished }

    let driver: any StorageDriver
    let onProblem: (StoreProblem) -> Void
    let onProgress: (StoreVerificationProgress) -> Void
    var report = StoreVerificationReport()
    var progress = StoreVerificationProgress()
    var outcomes: [Digest: Outcome] = [:]
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)

    init(
        driver: any StorageDriver, onProblem: @escaping (StoreProblem) -> Void,
        onProgress: @escaping (StoreVerificationProgress) -> Void
    ) {
        self.driver = driver
        self.onProblem = onProblem
        self.onProgress = onProgress
    }

    deinit { buffer.deallocate() }

    func record(_ problem: StoreProblem) {
        report.problems.append(problem)
        onProblem(problem)
    }

    // MARK: - Blobs

    /// Re-hashes every data file under `blobs/`, in path order (sequential on disk).
    func checkAllBlobs() throws {
        var files: [(digest: Digest, path: DriverPath, size: Int64)] = []
        do {
            try driver.walk(PathMapper.path(.blobs)) { entry in
                guard entry.kind == .file, entry.path.name == "data" else { return .continue }
                // Only a file at its digest's own path is a blob: the registry never looks elsewhere.
                if let digest = try? PathMapper.digest(fromBlobDataPath: entry.path),
                    PathMapper.path(.blobData(digest)) == entry.path,
                    let info = try? driver.stat(entry.path)
                {
                    files.append((digest, entry.path, info.size))
                }
                return .continue
            }
        } catch StorageDriverError.pathNotFound {
            return  // no blob yet: an empty store
        } catch let error as StorageDriverError {
            throw error.blobError
        }
        progress.blobsTotal = files.count
        progress.bytesTotal = files.reduce(0) { $0 + $1.size }
        for file in files {
            outcomes[file.digest] = check(file.digest, at: file.path)
        }
    }

    /// Re-hashes one blob's data and reports corruption or a read error.
    func check(_ digest: Digest, at path: DriverPath) -> Outcome {
        do {
            let (actual, size) = try hash(path, digest.algorithm)
            report.blobsChecked += 1
            progress.blobsChecked += 1
            guard actual == digest else {
                record(
                    StoreProblem(
                        kind: .corruptData, path: path, digest: digest,
                        detail: "the content hashes to \(actual), not \(digest) (\(size) bytes)"))
                return .damaged
            }
            return .intact
        } catch StorageDriverError.pathNotFound {
            return .vanished  // removed since the walk (a garbage collection): not a problem
        } catch {
            record(StoreProblem(kind: .unreadable, path: path, digest: digest, detail: "\(error)"))
            return .damaged
        }
    }

    /// The digest of a file's whole content under `algorithm`, and its size.
    func hash(_ path: DriverPath, _ algorithm: DigestAlgorithm) throws -> (Digest, Int64) {
        let reader = try driver.reader(path)
        let digester = Digester(algorithm)
        var offset: Int64 = 0
        while true {
            let n = try reader.read(into: buffer, at: offset)
            if n == 0 { break }
            digester.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            offset += Int64(n)
            progress.bytesHashed += Int64(n)
            report.bytesHashed += Int64(n)
            onProgress(progress)
        }
        return (digester.digest(), offset)
    }

    // MARK: - Links

    /// Checks every `_layers/<alg>/<hex>/link` of one repository.
    func checkLinks(of name: RepositoryName) throws {
        let root = PathMapper.path(.layers(name))
        do {
            try driver.walk(root) { entry in
                let parts = entry.path.value.dropFirst(root.value.count + 1).split(separator: "/")
                switch parts.count {
                case 1:  // <alg>: skip what is not an algorithm (old tarsum trees), as the registry does
                    return DigestAlgorithm(rawValue: String(parts[0])) == nil ? .skipDirectory : .continue
                case 2:
                    return .continue
                default:
                    // A link directory whose name is not a digest can never be asked for: skip it.
                    if parts.count == 3, parts[2] == "link", let digest = try? Digest(parsing: "\(parts[0]):\(parts[1])") {
                        checkLink(digest, at: entry.path, kind: entry.kind, in: name)
                    }
                    return .skipDirectory
                }
            }
        } catch StorageDriverError.pathNotFound {
            return
        } catch let error as StorageDriverError {
            throw error.blobError
        }
    }

    /// Checks one link: its content, the blob it holds, and for an alias that the blob's bytes
    /// really have the alias digest.
    func checkLink(_ digest: Digest, at path: DriverPath, kind: FileKind, in name: RepositoryName) {
        report.linksChecked += 1
        progress.linksChecked += 1
        func problem(_ kind: StoreProblem.Kind, _ detail: String, dataPath: DriverPath? = nil) {
            record(StoreProblem(kind: kind, path: path, repository: name, digest: digest, detail: detail, dataPath: dataPath))
        }
        guard kind == .file else {
            problem(.garbageLink, kind == .directory ? "a directory, not a link file" : "not a regular file (a symbolic link?)")
            return
        }
        let content: [UInt8]
        do {
            content = try driver.getContent(path, limit: 4096)
        } catch StorageDriverError.pathNotFound {
            return  // removed since the walk
        } catch StorageDriverError.tooLarge(_, let size, _) {
            problem(.garbageLink, "\(size) bytes, too large for a link")
            return
        } catch StorageDriverError.symlinkRefused {
            problem(.garbageLink, "a symbolic link, not a link file")
            return
        } catch {
            problem(.unreadable, "\(error)")
            return
        }
        if content.isEmpty {
            problem(.emptyLink, "an empty link file (an interrupted write): \(digest) reads as absent")
            return
        }
        let text = String(decoding: content, as: UTF8.self)
        guard let target = try? Digest(parsing: text) else {
            problem(.garbageLink, "the content is not a digest: \(Self.quoted(content))")
            return
        }
        guard target.algorithm == .canonical else {
            problem(.garbageLink, "holds \(target); a link must hold the blob's canonical sha256 digest")
            return
        }
        if digest.algorithm == .canonical, target != digest {
            problem(.wrongLink, "the link for \(digest) holds \(target): reads of \(digest) would get another blob's bytes")
            return
        }
        let dataPath = PathMapper.path(.blobData(target))
        let info: FileInfo
        do {
            info = try driver.stat(dataPath)
        } catch StorageDriverError.pathNotFound {
            if (try? driver.stat(PathMapper.path(.blob(target)))) != nil {
                problem(.missingData, "holds \(target), but its data file is missing", dataPath: dataPath)
            } else {
                problem(
                    .linkToDeletedBlob,
                    "holds \(target), whose blob is gone "
                        + "(registry 2.x garbage collection leaves such links; the blob reads as absent)"
                )
            }
            return
        } catch StorageDriverError.symlinkRefused {
            problem(.missingData, "holds \(target), but its data file is a symbolic link (never followed)", dataPath: dataPath)
            return
        } catch {
            problem(.unreadable, "holds \(target), but its data file cannot be examined: \(error)")
            return
        }
        guard info.kind == .file else {
            problem(.missingData, "holds \(target), but its data file is not a regular file", dataPath: dataPath)
            return
        }
        let outcome = outcomes[target] ?? check(target, at: dataPath)
        outcomes[target] = outcome
        guard outcome == .intact, digest.algorithm != .canonical else { return }
        // An alias: the canonical blob is intact; its bytes must also hash to the alias digest.
        do {
            let (actual, _) = try hash(dataPath, digest.algorithm)
            if actual != digest {
                problem(.wrongLink, "the alias \(digest) holds \(target), whose content hashes to \(actual)")
            }
        } catch StorageDriverError.pathNotFound {
            return
        } catch {
            problem(.unreadable, "holds \(target), but its data file cannot be read: \(error)")
        }
    }

    /// Link content for a message: printable ASCII as is, the rest escaped, at most 80 bytes.
    static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes.prefix(80) {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7f: text.unicodeScalars.append(UnicodeScalar(byte))
            case UInt8(ascii: "\n"): text += "\\n"
            default:
                let hex = Array("0123456789abcdef".utf8)
                text += "\\x" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return text + (bytes.count > 80 ? "\"… (\(bytes.count) bytes)" : "\"")
    }
}
