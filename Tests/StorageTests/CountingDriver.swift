import Glibc
import StorageDriver
import Synchronization

/// A driver over another one that counts the readers it opens and the reads they make (on the
/// S3 driver, a read of a block or more is one ranged GET), and can run a step before a given
/// read: what the blob cache's tests count fetches with and cut the storage off mid-fetch with.
final class CountingDriver: StorageDriver {
    let base: any StorageDriver
    let counts = Mutex(Counts())
    /// Runs before every read with that read's number (1, 2, …), on the reading thread.
    let beforeRead: @Sendable (Int) -> Void

    struct Counts: Sendable, Hashable {
        var readers = 0
        var reads = 0
    }

    init(base: any StorageDriver, beforeRead: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.base = base
        self.beforeRead = beforeRead
    }

    var name: String { "counting \(base.name)" }

    func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader {
        counts.withLock { $0.readers += 1 }
        return CountingReader(base: try base.reader(path), driver: self)
    }

    func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] { try base.getContent(path, limit: limit) }
    func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) { try base.putContent(path, content) }
    func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter { try base.writer(path, append: append) }
    func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo { try base.stat(path) }
    func createDirectory(_ path: DriverPath) throws(StorageDriverError) { try base.createDirectory(path) }
    func list(_ path: DriverPath) throws(StorageDriverError) -> [String] { try base.list(path) }
    func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        try base.enumerateNames(in: path, body)
    }
    func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) { try base.move(from: source, to: destination) }
    func delete(_ path: DriverPath) throws(StorageDriverError) { try base.delete(path) }
    func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        try base.walk(path, visit)
    }
    func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory { try base.directory(path) }
}

private final class CountingReader: DriverFileReader {
    let base: any DriverFileReader
    let driver: CountingDriver

    init(base: any DriverFileReader, driver: CountingDriver) {
        self.base = base
        self.driver = driver
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        let number = driver.counts.withLock { counts in
            counts.reads += 1
            return counts.reads
        }
        driver.beforeRead(number)
        return try base.read(into: buffer, at: offset)
    }
    func currentSize() throws(StorageDriverError) -> Int64 { try base.currentSize() }
    func version() throws(StorageDriverError) -> FileVersion? { try base.version() }
    var localDescriptor: Int32? { base.localDescriptor }
}
