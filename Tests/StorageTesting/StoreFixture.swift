import BlobCache
import Distribution
import Storage
import StorageDriver
import TestSupport

// Fixtures shared by the storage-level test targets (StorageTests, ScrubberTests).

/// A registry over a fresh store on either driver; the temporary directory lives as long as it.
public struct StoreFixture: CustomStringConvertible {
    public let registry: Registry
    public let driver: any StorageDriver
    public let directory: TemporaryDirectory?

    public init(registry: Registry, driver: any StorageDriver, directory: TemporaryDirectory?) {
        self.registry = registry
        self.driver = driver
        self.directory = directory
    }

    public static let kinds = ["filesystem", "inmemory"]

    public static func make(_ kind: String, cache: (any BlobDescriptorCacheProvider)? = InMemoryCacheProvider(), deleteEnabled: Bool = true)
        throws -> StoreFixture
    {
        let directory = kind == "filesystem" ? try TemporaryDirectory() : nil
        let driver: any StorageDriver = try directory.map { try FilesystemDriver(root: $0.path) } ?? InMemoryDriver()
        return StoreFixture(
            registry: Registry(driver: driver, cache: cache, deleteEnabled: deleteEnabled), driver: driver, directory: directory)
    }

    public var description: String { driver.name }

    /// Removes the directory; tests `defer` it, which also keeps the fixture alive until then.
    public func close() { directory?.remove() }

    /// Every path below the store's root, for "nothing was written" checks.
    public func allPaths() throws -> [String] {
        var paths: [String] = []
        do {
            try driver.walk(try DriverPath("/docker")) { entry in
                paths.append(entry.path.value)
                return .continue
            }
        } catch StorageDriverError.pathNotFound {}
        return paths
    }

    /// Only the files (no directories) below the store's root.
    public func allFiles() throws -> [String] {
        var paths: [String] = []
        do {
            try driver.walk(try DriverPath("/docker")) { entry in
                if entry.kind != .directory { paths.append(entry.path.value) }
                return .continue
            }
        } catch StorageDriverError.pathNotFound {}
        return paths
    }
}

/// Uploads `bytes` through a writer and commits under `provisional` (sha256 of the bytes by default).
@discardableResult
public func upload(_ bytes: [UInt8], to repository: Repository, as provisional: Digest? = nil) throws -> Descriptor {
    let writer = try repository.blobs.create()
    try writer.write(bytes)
    return try writer.commit(provisional: Descriptor(digest: provisional ?? Digester.digest(of: bytes), size: Int64(bytes.count)))
}

public func dp(_ s: String) -> DriverPath { try! DriverPath(s) }
