import Distribution
import Glibc
import Logging
import Storage
import StorageDriver

/// Re-hashes every blob and checks every repository's `_layers` links against the blobs they
/// name: what `blobfs verify` runs. It reads through the driver only, never through a cache, so it
/// sees the store as it is on disk.
public struct StoreScrubber: Sendable {
    public let registry: Registry
    /// Where a repository skipped for its invalid name is logged.
    public let logger: Logger

    public init(registry: Registry, logger: Logger = Logger(label: "blobfs.scrubber")) {
        self.registry = registry
        self.logger = logger
    }

    /// Scrubs the whole store, or only `repository`: then only its links and the blobs they
    /// name are checked. Problems go to `onProblem` as they are found and into the report;
    /// `onIntact`, when given, hears of each blob whose data hashed to its digest, with the
    /// version of the data file that was hashed (when it did not change while it was read).
    /// `workers` threads read and hash; problems, report and progress stay on the calling thread
    /// and in the same order whatever their number.
    public func scrub(
        repository: RepositoryName? = nil, workers: Int = 1, onProblem: (StoreProblem) -> Void = { _ in },
        onIntact: ((Digest, FileVersion) -> Void)? = nil, onProgress: (ScrubProgress) -> Void = { _ in }
    ) throws -> ScrubReport {
        try withoutActuallyEscaping(onProblem) { onProblem in
            try withoutActuallyEscaping(onProgress) { onProgress in
                let run = ScrubRun(
                    driver: registry.driver, workers: max(1, workers), onProblem: onProblem, onIntact: onIntact,
                    onProgress: onProgress)
                return try scrub(run, repository)
            }
        }
    }

    private func scrub(_ run: ScrubRun, _ repository: RepositoryName?) throws -> ScrubReport {
        let names: [RepositoryName]
        if let repository {
            // Only an absent `_layers` means no such repository: one that is a symbolic link, or
            // cannot be reached, is this repository's problem to report, never "intact".
            do {
                _ = try registry.driver.stat(PathMapper.path(.layers(repository)))
            } catch StorageDriverError.pathNotFound {
                throw ScrubError.repositoryNotFound(repository)
            } catch {}
            names = [repository]
        } else {
            run.checkAllBlobs()
            names = RepositorySurvey.names(driver: registry.driver, logger: logger, unreachable: run.record)
        }
        run.progress.phase = .links
        run.progress.repositoriesTotal = names.count
        for name in names {
            run.progress.repository = name
            run.onProgress(run.progress)
            run.checkLinks(of: name)
            run.report.repositoriesChecked += 1
            run.progress.repositoriesChecked += 1
        }
        run.onProgress(run.progress)
        return run.report
    }
}

/// The calling thread's side of one scrub: it takes what the workers found, in order, and
/// turns it into problems, counts and progress, remembering what each blob turned out to be.
private final class ScrubRun {
    let driver: any StorageDriver
    let workers: Int
    let onProblem: (StoreProblem) -> Void
    let onIntact: ((Digest, FileVersion) -> Void)?
    let onProgress: (ScrubProgress) -> Void
    var report = ScrubReport()
    var progress = ScrubProgress()
    var outcomes: [Digest: BlobOutcome] = [:]
    /// Bytes the workers have read, for progress inside a large blob.
    let bytesRead = ByteCounter()
    /// The calling thread's worker: it redraws progress inside a large blob.
    private lazy var callerWorker = ScrubWorker(counter: bytesRead, readsVersions: onIntact != nil) { [unowned self] in
        progress.bytesHashed = max(progress.bytesHashed, bytesRead.value.load(ordering: .relaxed))
        onProgress(progress)
    }
    /// The store's `blobs` directory, opened once.
    private var blobsDirectory: (any DriverDirectory)?

    init(
        driver: any StorageDriver, workers: Int, onProblem: @escaping (StoreProblem) -> Void,
        onIntact: ((Digest, FileVersion) -> Void)?, onProgress: @escaping (ScrubProgress) -> Void
    ) {
        self.driver = driver
        self.workers = workers
        self.onProblem = onProblem
        self.onIntact = onIntact
        self.onProgress = onProgress
    }

    func record(_ problem: StoreProblem) {
        report.problems.append(problem)
        onProblem(problem)
    }

    /// Runs `job` over `count` items on the workers and consumes the results in order.
    func inOrder<Result: Sendable>(
        _ count: Int, _ job: @escaping @Sendable (ScrubWorker, Int) -> Result, consume: (Int, Result) throws -> Void
    ) rethrows {
        let counter = bytesRead
        let readsVersions = onIntact != nil
        try OrderedWork.run(
            count: count, workers: workers, caller: callerWorker,
            makeWorker: { ScrubWorker(counter: counter, readsVersions: readsVersions) }, job: job,
            whileWaiting: {
                progress.bytesHashed = max(progress.bytesHashed, counter.value.load(ordering: .relaxed))
                onProgress(progress)
            },
            consume: { index, result in
                try consume(index, result)
                onProgress(progress)
            })
    }

    /// `blobs/`, held open; where it cannot be (a link, an odd driver), a path-based handle that
    /// fails each file as a lookup from the root would.
    func blobs() -> any DriverDirectory {
        if let blobsDirectory { return blobsDirectory }
        let path = PathMapper.path(.blobs)
        let directory = (try? driver.directory(path)) ?? driver.pathDirectory(path)
        blobsDirectory = directory
        return directory
    }

    /// Counts a finished hash of `digest`'s data and reports corruption or a read error.
    func settle(_ digest: Digest, _ result: HashResult) -> BlobOutcome {
        // Built only for a problem: validating a path per blob is a measurable part of the run.
        var path: DriverPath { PathMapper.path(.blobData(digest)) }
        switch result {
        case .hashed(let digests, let size, let version):
            report.blobsChecked += 1
            progress.blobsChecked += 1
            count(size)
            guard digests[0] == digest else {
                record(
                    StoreProblem(
                        kind: .corruptData, path: path, digest: digest,
                        detail: "the content hashes to \(digests[0]), not \(digest) (\(size) bytes)"))
                return .damaged
            }
            if let onIntact, let version { onIntact(digest, version) }
            return .intact
        case .failed(let error, let bytes):
            count(bytes)
            record(StoreProblem(kind: .unreadable, path: path, digest: digest, detail: error))
            return .damaged
        }
    }

    func count(_ bytes: Int64) {
        report.bytesHashed += bytes
        progress.bytesHashed = max(progress.bytesHashed, report.bytesHashed)
    }

    // MARK: - Blobs

    /// Re-hashes every data file under `blobs/`, in path order (sequential on disk).
    func checkAllBlobs() {
        let path = PathMapper.path(.blobs)
        let blobs: any DriverDirectory
        do {
            blobs = try driver.directory(path)
        } catch StorageDriverError.pathNotFound {
            return  // no blob yet: an empty store
        } catch {
            record(UnreachableDirectory.problem(
                path, reason: UnreachableDirectory.reason(error), unchecked: "no blob was re-hashed but those links name"))
            return
        }
        let files = BlobSurvey.files(in: blobs, unreachable: record)
        blobsDirectory = blobs
        progress.blobsTotal = files.count
        progress.bytesTotal = files.reduce(0) { $0 + $1.size }
        inOrder(files.count, { worker, index in Self.hash(files[index], in: blobs, worker) }) { index, result in
            let digest = files[index].digest
            outcomes[digest] = result.map { settle(digest, $0) } ?? .vanished
        }
    }

    /// A worker's job in the blob phase: nil when the file went away since the survey (a garbage
    /// collection), which is no problem.
    static func hash(_ file: BlobFile, in blobs: any DriverDirectory, _ worker: ScrubWorker) -> HashResult? {
        do {
            let opened = try blobs.open(file.relative)
            guard opened.kind == .file else {
                // Replaced since the survey: read it as a reader of the path would fail.
                let path = PathMapper.path(.blobData(file.digest)).value
                let error = opened.kind == .directory ? StorageDriverError.isDirectory(path) : .io(operation: "open", path: path, errno: EINVAL)
                return .failed("\(error)", bytes: 0)
            }
            return worker.hash(opened, [file.digest.algorithm])
        } catch StorageDriverError.pathNotFound {
            return nil
        } catch {
            return .failed("\(error)", bytes: 0)
        }
    }

    // MARK: - Links

    /// Checks every `_layers/<alg>/<hex>/link` of one repository, in path order. A directory on
    /// the way that cannot be entered is one problem, and the check goes on with the next.
    func checkLinks(of name: RepositoryName) {
        let layersPath = PathMapper.path(.layers(name))
        func unreachable(_ path: DriverPath, digest: Digest? = nil, _ reason: String, _ unchecked: String) {
            record(UnreachableDirectory.problem(path, repository: name, digest: digest, reason: reason, unchecked: unchecked))
        }
        let layers: any DriverDirectory
        let algorithmEntries: [DirectoryEntry]
        do {
            layers = try driver.directory(layersPath)
            algorithmEntries = try layers.entries()
        } catch StorageDriverError.pathNotFound where (try? driver.stat(layersPath)) == nil {
            return  // removed since the repositories were listed
        } catch {
            unreachable(layersPath, UnreachableDirectory.reason(error), "the repository's links were not checked")
            return
        }
        var directories: [any DriverDirectory] = []
        var entries: [LinkEntry] = []
        // Skip what is not an algorithm (old tarsum trees), as the registry does.
        for algorithmEntry in algorithmEntries {
            guard let algorithm = DigestAlgorithm(rawValue: algorithmEntry.name),
                let path = try? layersPath.appending(algorithmEntry.name)
            else { continue }
            let unchecked = "the repository's \(algorithm.rawValue) links were not checked"
            guard algorithmEntry.kind == .directory else {
                unreachable(path, UnreachableDirectory.reason(ofEntry: algorithmEntry.name, kind: algorithmEntry.kind, in: layers), unchecked)
                continue
            }
            let directory: any DriverDirectory
            let linkEntries: [DirectoryEntry]
            do {
                directory = try layers.directory(algorithmEntry.name)
                linkEntries = try directory.entries()
            } catch StorageDriverError.pathNotFound where (try? layers.stat(algorithmEntry.name)) == nil {
                continue
            } catch {
                unreachable(path, UnreachableDirectory.reason(error), unchecked)
                continue
            }
            // A link directory whose name is not a digest can never be asked for: skip it.
            for linkEntry in linkEntries {
                guard let digest = try? Digest(parsing: "\(algorithm.rawValue):\(linkEntry.name)") else { continue }
                guard linkEntry.kind == .directory else {
                    let reason = UnreachableDirectory.reason(ofEntry: linkEntry.name, kind: linkEntry.kind, in: directory)
                    unreachable(
                        PathMapper.path(.layerLink(name, digest)).parent!, digest: digest, reason, "the link for \(digest) was not checked")
                    continue
                }
                entries.append(LinkEntry(digest: digest, directory: directories.count))
            }
            directories.append(directory)
        }
        let inspector = LinkInspector(repository: name, directories: directories, blobs: blobs(), known: outcomes)
        let links = entries
        inOrder(links.count, { worker, index in inspector.inspect(links[index], worker) }) { index, finding in
            settle(finding, links[index].digest, in: name)
        }
    }

    /// Counts and reports one link as a worker found it.
    func settle(_ finding: LinkFinding, _ digest: Digest, in name: RepositoryName) {
        func problem(_ kind: StoreProblem.Kind, _ detail: String, dataPath: DriverPath? = nil) {
            let path = PathMapper.path(.layerLink(name, digest))
            record(StoreProblem(kind: kind, path: path, repository: name, digest: digest, detail: detail, dataPath: dataPath))
        }
        switch finding {
        case .absent: return
        case .failed(let error):
            // The link's own directory cannot be entered: nothing about the link is known.
            record(UnreachableDirectory.problem(
                PathMapper.path(.layerLink(name, digest)).parent!, repository: name, digest: digest,
                reason: UnreachableDirectory.reason(error), unchecked: "the link for \(digest) was not checked"))
            return
        case .problem, .blob: break
        }
        report.linksChecked += 1
        progress.linksChecked += 1
        guard case .blob(let target, let data) = finding else {
            if case .problem(let kind, let detail) = finding { problem(kind, detail) }
            return
        }
        var dataPath: DriverPath { PathMapper.path(.blobData(target)) }
        switch data {
        case .missing:
            problem(.missingData, "holds \(target), but its data file is missing", dataPath: dataPath)
        case .deleted:
            problem(
                .linkToDeletedBlob,
                "holds \(target), whose blob is gone "
                    + "(registry 2.x garbage collection leaves such links; the blob reads as absent)"
            )
        case .symlink:
            problem(
                .notARegularFile, "holds \(target), but its data file is a symbolic link or lies behind one (never followed)",
                dataPath: dataPath)
        case .unexaminable(let error):
            problem(.unreadable, "holds \(target), but its data file cannot be examined: \(error)")
        case .notAFile(let kind):
            let what = kind == .directory ? "a directory" : "a FIFO, socket or device"
            problem(.notARegularFile, "holds \(target), but its data file is \(what), not a regular file", dataPath: dataPath)
        case .file(let canonical, let alias):
            // The first link to name a blob settles it; the workers hashed it (again) only when
            // it was not known when this repository's check began.
            let outcome = outcomes[target] ?? canonical.map { settle(target, $0) } ?? .vanished
            outcomes[target] = outcome
            // An alias: the canonical blob is intact; its bytes must also hash to the alias digest.
            guard outcome == .intact, digest.algorithm != .canonical, let alias else { return }
            switch alias {
            case .hashed(let digests, let size, _):
                count(size)
                if digests[0] != digest {
                    problem(.wrongLink, "the alias \(digest) holds \(target), whose content hashes to \(digests[0])")
                }
            case .failed(let error, let bytes):
                count(bytes)
                problem(.unreadable, "holds \(target), but its data file cannot be read: \(error)")
            }
        }
    }
}
