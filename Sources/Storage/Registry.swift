import BlobCache
import Distribution
import Logging
import StorageDriver

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
    let logger: Logger

    public init(
        driver: any StorageDriver, cache: (any BlobDescriptorCacheProvider)? = nil, deleteEnabled: Bool = false,
        logger: Logger = Logger(label: "blobfs.storage")
    ) {
        self.driver = driver
        self.cache = cache
        self.deleteEnabled = deleteEnabled
        self.logger = logger
        let statter = GlobalBlobStatter(driver: driver, logger: logger)
        globalStatter = cache.map { CachedBlobStatter(cache: $0, backend: statter, logger: logger) } ?? statter
        blobStore = GlobalBlobStore(driver: driver, statter: globalStatter, logger: logger)
    }

    /// The repository `name`, validated; it need not exist yet.
    public func repository(_ name: String) throws -> Repository {
        try repository(RepositoryName(name))
    }

    public func repository(_ name: RepositoryName) throws -> Repository {
        let linked = LinkedBlobStatter(driver: driver, repository: name, linkSets: [.layers], global: globalStatter, logger: logger)
        let accessController: any BlobDescriptorService =
            try cache.map { CachedBlobStatter(cache: try $0.repositoryScoped(name), backend: linked, logger: logger) } ?? linked
        let blobs = LinkedBlobStore(
            repository: name, driver: driver, accessController: accessController, global: blobStore, linkSet: .layers,
            deleteEnabled: deleteEnabled, logger: logger)
        return Repository(name: name, blobs: blobs)
    }

    /// Every repository, sorted: a directory under `repositories/` is one iff it holds `_layers`
    /// (docs/storage-format.md, Repositories). Names outside the grammar are skipped with a warning.
    public func repositories() throws -> [RepositoryName] {
        let root = PathMapper.path(.repositoriesRoot)
        var names: [RepositoryName] = []
        do {
            try driver.walk(root) { entry in
                guard entry.path.name.hasPrefix("_") else { return .continue }
                if entry.path.name == "_layers", let parent = entry.path.parent {
                    let name = String(parent.value.dropFirst(root.value.count + 1))
                    do {
                        names.append(try RepositoryName(name))
                    } catch {
                        logger.warning("skipping a repository with an invalid name", metadata: ["name": "\(name)", "error": "\(error)"])
                    }
                }
                return .skipDirectory
            }
        } catch StorageDriverError.pathNotFound {
            return []
        } catch let error as StorageDriverError {
            throw error.blobError
        }
        return names.sorted()
    }
}

extension Registry {
    /// Makes `name` a repository: its `_layers` directory, as the registry's catalog and GC
    /// recognise repositories (docs/storage-format.md, Repositories). Existing repositories are left
    /// as they are.
    public func createRepository(_ name: RepositoryName) throws {
        try driverCall { try driver.createDirectory(PathMapper.path(.layers(name))) }
    }

    /// Creates the directory of a name prefix (`team`, `team/app`) that is not a repository yet.
    public func createNamePrefix(_ name: RepositoryName) throws {
        try driverCall { try driver.createDirectory(PathMapper.path(.repository(name))) }
    }
}
