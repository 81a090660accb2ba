import BlobCache
import Distribution
import Storage
import StorageDriver
import TestSupport

// The part of StorageTests' fixtures the scrubber's tests use (a test target cannot share
// another's sources).

/// A registry over a fresh store on either driver; the temporary directory lives as long as it.
struct StoreFixture: CustomStringConvertible {
    let registry: Registry
    let driver: any StorageDriver
    let directory: TemporaryDirectory?

    static let kinds = ["filesystem", "inmemory"]

    static func make(_ kind: String) throws -> StoreFixture {
        let directory = kind == "filesystem" ? try TemporaryDirectory() : nil
        let driver: any StorageDriver = try directory.map { try FilesystemDriver(root: $0.path) } ?? InMemoryDriver()
        return StoreFixture(
            registry: Registry(driver: driver, cache: InMemoryCacheProvider(), deleteEnabled: true), driver: driver, directory: directory)
    }

    var description: String { driver.name }

    /// Removes the directory; tests `defer` it, which also keeps the fixture alive until then.
    func close() { directory?.remove() }
}

/// Uploads `bytes` through a writer and commits under `provisional` (sha256 of the bytes by default).
@discardableResult
func upload(_ bytes: [UInt8], to repository: Repository, as provisional: Digest? = nil) throws -> Descriptor {
    let writer = try repository.blobs.create()
    try writer.write(bytes)
    return try writer.commit(provisional: Descriptor(digest: provisional ?? Digester.digest(of: bytes), size: Int64(bytes.count)))
}

func dp(_ s: String) -> DriverPath { try! DriverPath(s) }
