import StorageDriver

/// A test driver over another that passes every call it does not count or change to `base`: the
/// counting drivers of the blob cache's and the listings' tests, and the census's held driver,
/// say only what they observe.
/// (The requirements with defaults — the held-directory reads, capacity, owner, concurrency —
/// keep StorageDriver's, which come back through the wrapper's own methods.)
public protocol ForwardingDriver: StorageDriver {
    var base: any StorageDriver { get }
}

extension ForwardingDriver {
    public func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] { try base.getContent(path, limit: limit) }
    public func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) { try base.putContent(path, content) }
    public func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader { try base.reader(path) }
    public func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter { try base.writer(path, append: append) }
    public func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo { try base.stat(path) }
    public func createDirectory(_ path: DriverPath) throws(StorageDriverError) { try base.createDirectory(path) }
    public func list(_ path: DriverPath) throws(StorageDriverError) -> [String] { try base.list(path) }
    public func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        try base.enumerateNames(in: path, body)
    }
    public var listsByPrefix: Bool { base.listsByPrefix }
    public func enumerateNames(
        in path: DriverPath, startingWith prefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        try base.enumerateNames(in: path, startingWith: prefix, body)
    }
    public func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) { try base.move(from: source, to: destination) }
    public func delete(_ path: DriverPath) throws(StorageDriverError) { try base.delete(path) }
    public func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        try base.walk(path, visit)
    }
    public func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory { try base.directory(path) }
}
