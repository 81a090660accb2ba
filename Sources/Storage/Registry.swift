import BlobCache
import Distribution
import Logging
import StorageDriver
import Synchronization

/// A registry's storage over a driver: repositories, the global blob store, the descriptor cache,
/// and upload purging. Wired as the registry wires it (docs/storage-format.md, Blob services and how
/// the registry wires them).
public final class Registry: Sendable {
    public let driver: any StorageDriver
    public let cache: (any BlobDescriptorCacheProvider)?
    public let deleteEnabled: Bool
    /// The global statter: behind the cache when there is one.
    public let globalStatter: any BlobDescriptorService
    public let blobStore: GlobalBlobStore
    /// Blob data kept on local disk (for a driver whose files are not local), if any.
    public let dataCache: BlobDataCache?
    let logger: Logger
    /// Each repository built once: a mount asks for one on every lookup, and building it means a
    /// linked statter, a cache scope and a store. Kept for the registry's life: only names that
    /// were asked for are here, and a mount asks only for repositories it found on disk.
    private let built = Mutex<[RepositoryName: Repository]>([:])

    public init(
        driver: any StorageDriver, cache: (any BlobDescriptorCacheProvider)? = nil, deleteEnabled: Bool = false,
        dataCache: BlobDataCache? = nil, logger: Logger = Logger(label: "blobfs.storage")
    ) {
        self.dataCache = dataCache
        self.driver = driver
        self.cache = cache
        self.deleteEnabled = deleteEnabled
        self.logger = logger
        let statter = GlobalBlobStatter(driver: driver, logger: logger)
        globalStatter = cache.map { CachedBlobStatter(cache: $0, backend: statter, logger: logger) } ?? statter
        blobStore = GlobalBlobStore(driver: driver, statter: globalStatter, dataCache: dataCache, logger: logger)
    }

    /// The repository `name`, validated; it need not exist yet.
    public func repository(_ name: String) throws(BlobError) -> Repository {
        try repository(RepositoryName(name))
    }

    /// The repository `name`; it need not exist yet. The same one on every call, so that its
    /// repository-scoped cache statistics add up.
    public func repository(_ name: RepositoryName) throws(BlobError) -> Repository {
        if let repository = built.withLock({ $0[name] }) { return repository }
        // Built outside the lock (a cache scope may do work); two racing builders make equal
        // values, and the first one stored is kept.
        let linked = LinkedBlobStatter(driver: driver, repository: name, linkSets: [.layers], global: globalStatter, logger: logger)
        let accessController: any BlobDescriptorService =
            try cache.map { (cache) throws(BlobError) in
                CachedBlobStatter(cache: try cache.repositoryScoped(name), backend: linked, logger: logger)
            } ?? linked
        let blobs = LinkedBlobStore(
            repository: name, driver: driver, accessController: accessController, global: blobStore, linkSet: .layers,
            deleteEnabled: deleteEnabled, logger: logger)
        let repository = Repository(
            name: name, blobs: blobs, manifests: ManifestStore(repository: name, driver: driver, global: blobStore, logger: logger),
            tags: TagStore(repository: name, driver: driver, logger: logger))
        return built.withLock { built in
            if let first = built[name] { return first }
            built[name] = repository
            return repository
        }
    }

    /// Every repository, sorted: a directory under `repositories/` is one iff it holds `_layers`
    /// (docs/storage-format.md, Repositories). Names outside the grammar are skipped with a warning.
    public func repositories() throws(BlobError) -> [RepositoryName] {
        if driver.requestConcurrency.isRemote { return try repositoriesLevelByLevel() }
        let root = PathMapper.path(.repositoriesRoot)
        var names: [RepositoryName] = []
        do throws(StorageDriverError) {
            try driver.walk(root) { (entry) throws(StorageDriverError) in
                guard entry.path.name.hasPrefix("_") else { return .continue }
                // A `_layers` that is not a directory makes no repository (`isRepository`).
                if entry.path.name == "_layers", entry.kind == .directory, let parent = entry.path.parent {
                    let name = String(parent.value.dropFirst(root.value.count + 1))
                    do {
                        names.append(try RepositoryName(name))
                    } catch {
                        logger.warning("skipping a repository with an invalid name", metadata: ["name": "\(name)", "error": "\(error)"])
                    }
                }
                return .skipDirectory
            }
        } catch .pathNotFound {
            return []
        } catch {
            throw error.blobError
        }
        return names.sorted()
    }
}

extension Registry {
    /// Makes `name` a repository: its `_layers` directory, as the registry's catalog and GC
    /// recognise repositories (docs/storage-format.md, Repositories). Existing repositories are left
    /// as they are.
    public func createRepository(_ name: RepositoryName) throws(BlobError) {
        try driverCall { () throws(StorageDriverError) in try driver.createDirectory(PathMapper.path(.layers(name))) }
    }

    /// Creates the directory of a name prefix (`team`, `team/app`) that is not a repository yet.
    public func createNamePrefix(_ name: RepositoryName) throws(BlobError) {
        try driverCall { () throws(StorageDriverError) in try driver.createDirectory(PathMapper.path(.repository(name))) }
    }

    /// The same for a store where a walk is a listing of every key below `repositories/` (S3:
    /// each link file of each repository; about 20 pages one after the other, 0.4 s, for a store
    /// of 10,002 links on radosgw, inside a fresh mount's first `stat`): the name tree one level
    /// at a time, the directories of a level side by side, each one listing of its children
    /// (`childComponents`) and whether it holds `_layers` (`isRepository`); nothing inside a
    /// repository's `_layers`, `_manifests` or `_uploads` is listed.
    private func repositoriesLevelByLevel() throws(BlobError) -> [RepositoryName] {
        var names: [RepositoryName] = []
        var level: [RepositoryName?] = [nil]
        while !level.isEmpty {
            let found = level.concurrentMap(driver.requestConcurrency) { prefix in
                Result { () throws(BlobError) -> (Bool, [RepositoryName]) in
                    let isRepository = try prefix.map { (name) throws(BlobError) in try self.isRepository(name) } ?? false
                    let children = try self.childComponents(of: prefix).compactMap { component in
                        try? RepositoryName(prefix.map { "\($0)/\(component)" } ?? component)
                    }
                    return (isRepository, children)
                }
            }
            var next: [RepositoryName?] = []
            for (prefix, result) in zip(level, found) {
                let (isRepository, children) = try result.get()
                if isRepository, let prefix { names.append(prefix) }
                next += children.map { Optional($0) }
            }
            level = next
        }
        return names.sorted()
    }
}
