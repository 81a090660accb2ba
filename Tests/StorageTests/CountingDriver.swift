import Glibc
import StorageDriver
import StorageTesting
import Synchronization

/// A driver over another one that counts the readers it opens and the reads they make (on the
/// S3 driver, a read of a block or more is one ranged GET), and can run a step before a given
/// read: what the blob cache's tests count fetches with and cut the storage off mid-fetch with.
final class CountingDriver: ForwardingDriver {
    let base: any StorageDriver
    let counts = Mutex(Counts())
    /// The lengths of the exact-range reads (`readRange`) made, in order.
    let rangeReads = Mutex<[Int]>([])
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
    /// One read as well, its length recorded in `rangeReads`.
    func readRange(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        let number = driver.counts.withLock { counts in
            counts.reads += 1
            return counts.reads
        }
        driver.rangeReads.withLock { $0.append(buffer.count) }
        driver.beforeRead(number)
        return try base.readRange(into: buffer, at: offset)
    }
    /// One read as well (one ranged GET on S3), passed through so the driver copies its own way.
    func copy(at offset: Int64, count: Int, intoFile descriptor: Int32, localPath: String) throws(StorageDriverError) -> Int {
        let number = driver.counts.withLock { counts in
            counts.reads += 1
            return counts.reads
        }
        driver.beforeRead(number)
        return try base.copy(at: offset, count: count, intoFile: descriptor, localPath: localPath)
    }
    func currentSize() throws(StorageDriverError) -> Int64 { try base.currentSize() }
    func version() throws(StorageDriverError) -> FileVersion? { try base.version() }
    var localDescriptor: Int32? { base.localDescriptor }
}
