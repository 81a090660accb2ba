import StorageDriver

/// A storage driver's operations, as the `operation` label of the `blobfs_storage_*` families
/// names them; `read`, `write` and `commit` are calls on an open file.
public enum StorageOperation: String, CaseIterable, Sendable {
    case getContent = "get_content"
    case putContent = "put_content"
    case reader, writer, stat
    case createDirectory = "create_directory"
    case list
    case enumerateNames = "enumerate_names"
    case move, delete, walk, directory, capacity
    case read, write, commit

    /// The operation's place in `allCases`: the metric objects are found by it.
    var index: Int {
        switch self {
        case .getContent: 0
        case .putContent: 1
        case .reader: 2
        case .writer: 3
        case .stat: 4
        case .createDirectory: 5
        case .list: 6
        case .enumerateNames: 7
        case .move: 8
        case .delete: 9
        case .walk: 10
        case .directory: 11
        case .capacity: 12
        case .read: 13
        case .write: 14
        case .commit: 15
        }
    }
}

/// Any storage driver, counted: every call's count, failures and duration by operation
/// (`blobfs_storage_*`). A decorator, so that every driver — the filesystem driver, an S3
/// driver — reports through the same names and none of them is edited. The files it opens are
/// wrapped too (reads and writes are the calls a remote driver spends its time in); what a file
/// exposes for passthrough (`localDescriptor`, `version`) is the wrapped file's.
///
/// "Failed" is any thrown error but `pathNotFound`: asking whether a path exists is a normal
/// question, not a storage failure.
public struct InstrumentedDriver: StorageDriver {
    public let base: any StorageDriver
    let metrics: BlobfsMetrics

    public init(_ base: any StorageDriver, metrics: BlobfsMetrics) {
        self.base = base
        self.metrics = metrics
    }

    public var name: String { base.name }
    public var owner: StorageOwner? { base.owner }
    public var requestConcurrency: RequestConcurrency { base.requestConcurrency }

    /// Runs `body` as one counted call of `operation`.
    @inline(__always)
    func counted<T>(_ operation: StorageOperation, _ body: () throws(StorageDriverError) -> T) throws(StorageDriverError) -> T {
        let started = BlobfsMetrics.now()
        do {
            let result = try body()
            metrics.storageCalled(operation, started: started, failed: false)
            return result
        } catch {
            if case .pathNotFound = error {
                metrics.storageCalled(operation, started: started, failed: false)
            } else {
                metrics.storageCalled(operation, started: started, failed: true)
            }
            throw error
        }
    }

    public func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        try counted(.getContent) { () throws(StorageDriverError) in try base.getContent(path, limit: limit) }
    }

    public func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) {
        try counted(.putContent) { () throws(StorageDriverError) in try base.putContent(path, content) }
    }

    public func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader {
        let reader = try counted(.reader) { () throws(StorageDriverError) in try base.reader(path) }
        return InstrumentedReader(base: reader, driver: self)
    }

    public func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter {
        let writer = try counted(.writer) { () throws(StorageDriverError) in try base.writer(path, append: append) }
        return InstrumentedWriter(base: writer, driver: self)
    }

    public func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        try counted(.stat) { () throws(StorageDriverError) in try base.stat(path) }
    }

    /// Counted as the `get_content` and `stat` it stands for; the wrapped driver's own, so that
    /// the directories it holds open serve a mount with metrics on too.
    public func getContent(_ relative: String, below directory: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        try counted(.getContent) { () throws(StorageDriverError) in try base.getContent(relative, below: directory, limit: limit) }
    }

    public func stat(_ relative: String, below directory: DriverPath) throws(StorageDriverError) -> FileInfo {
        try counted(.stat) { () throws(StorageDriverError) in try base.stat(relative, below: directory) }
    }

    public func createDirectory(_ path: DriverPath) throws(StorageDriverError) {
        try counted(.createDirectory) { () throws(StorageDriverError) in try base.createDirectory(path) }
    }

    public func list(_ path: DriverPath) throws(StorageDriverError) -> [String] {
        try counted(.list) { () throws(StorageDriverError) in try base.list(path) }
    }

    public func enumerateNames(
        in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        try counted(.enumerateNames) { () throws(StorageDriverError) in try base.enumerateNames(in: path, body) }
    }

    public var listsByPrefix: Bool { base.listsByPrefix }

    public func enumerateNames(
        in path: DriverPath, startingWith prefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        try counted(.enumerateNames) { () throws(StorageDriverError) in try base.enumerateNames(in: path, startingWith: prefix, body) }
    }

    public func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) {
        try counted(.move) { () throws(StorageDriverError) in try base.move(from: source, to: destination) }
    }

    public func delete(_ path: DriverPath) throws(StorageDriverError) {
        try counted(.delete) { () throws(StorageDriverError) in try base.delete(path) }
    }

    public func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        try counted(.walk) { () throws(StorageDriverError) in try base.walk(path, visit) }
    }

    public func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory {
        try counted(.directory) { () throws(StorageDriverError) in try base.directory(path) }
    }

    public func capacity() throws(StorageDriverError) -> StorageCapacity? {
        try counted(.capacity) { () throws(StorageDriverError) in try base.capacity() }
    }
}

/// An open file of an `InstrumentedDriver`: reads counted, the rest passed through.
final class InstrumentedReader: DriverFileReader {
    let base: any DriverFileReader
    let driver: InstrumentedDriver

    init(base: any DriverFileReader, driver: InstrumentedDriver) {
        self.base = base
        self.driver = driver
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        try driver.counted(.read) { () throws(StorageDriverError) in try base.read(into: buffer, at: offset) }
    }

    func readRange(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        try driver.counted(.read) { () throws(StorageDriverError) in try base.readRange(into: buffer, at: offset) }
    }

    /// A read too (one ranged GET on S3): passed through, so that the driver's own way of copying
    /// into a file is kept under metrics.
    func copy(at offset: Int64, count: Int, intoFile descriptor: Int32, localPath: String) throws(StorageDriverError) -> Int {
        try driver.counted(.read) { () throws(StorageDriverError) in
            try base.copy(at: offset, count: count, intoFile: descriptor, localPath: localPath)
        }
    }

    func currentSize() throws(StorageDriverError) -> Int64 { try base.currentSize() }
    func version() throws(StorageDriverError) -> FileVersion? { try base.version() }
    var localDescriptor: Int32? { base.localDescriptor }
}

/// A file being written through an `InstrumentedDriver`: writes and the commit counted.
final class InstrumentedWriter: DriverFileWriter {
    let base: any DriverFileWriter
    let driver: InstrumentedDriver

    init(base: any DriverFileWriter, driver: InstrumentedDriver) {
        self.base = base
        self.driver = driver
    }

    var size: Int64 { base.size }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageDriverError) {
        try driver.counted(.write) { () throws(StorageDriverError) in try base.write(bytes) }
    }

    func commit() throws(StorageDriverError) {
        try driver.counted(.commit) { () throws(StorageDriverError) in try base.commit() }
    }

    func close() { base.close() }
    func cancel() throws(StorageDriverError) { try base.cancel() }
}
