/// A directory held open, so that the many files below it that `blobfs verify` reads are resolved
/// from it rather than from the driver's root each time. Symbolic links are never followed.
public protocol DriverDirectory: AnyObject, Sendable {
    /// The directory's own driver path.
    var path: DriverPath { get }
    /// The children sorted by name; names outside the driver path grammar are left out.
    func entries() throws(StorageDriverError) -> [DirectoryEntry]
    /// A child directory, held open in turn.
    func directory(_ name: String) throws(StorageDriverError) -> any DriverDirectory
    /// Opens `relative` (components joined by `/`) for reading with a single open: what it is,
    /// and for a regular file a reader. Never updates the file's access time where the
    /// filesystem allows it: verification reads should leave the store as it was.
    func open(_ relative: String) throws(StorageDriverError) -> OpenedFile
    /// What `relative` is, without opening it for reading.
    func stat(_ relative: String) throws(StorageDriverError) -> FileInfo
}

/// One child of a directory.
public struct DirectoryEntry: Sendable, Hashable {
    public var name: String
    public var kind: FileKind

    public init(name: String, kind: FileKind) {
        self.name = name
        self.kind = kind
    }
}

/// A file opened by `DriverDirectory.open`.
public struct OpenedFile: Sendable {
    public var kind: FileKind
    /// Bytes for a regular file when it was opened, 0 for anything else.
    public var size: Int64
    /// A reader for a regular file; nil for a directory or anything else.
    public var reader: (any DriverFileReader)?

    public init(kind: FileKind, size: Int64, reader: (any DriverFileReader)?) {
        self.kind = kind
        self.size = size
        self.reader = reader
    }
}

extension StorageDriver {
    /// The directory at `path`, held open where the driver can; by default a path-based handle.
    public func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory {
        try PathDirectory(driver: self, checking: path)
    }

    /// A handle that resolves every call from the root through the driver's path operations:
    /// the fallback where a directory cannot be held open.
    public func pathDirectory(_ path: DriverPath) -> any DriverDirectory {
        PathDirectory(driver: self, path: path)
    }
}

/// A directory handle made of driver path calls only, for drivers without descriptors.
final class PathDirectory: DriverDirectory {
    let driver: any StorageDriver
    let path: DriverPath

    init(driver: any StorageDriver, path: DriverPath) {
        self.driver = driver
        self.path = path
    }

    convenience init(driver: any StorageDriver, checking path: DriverPath) throws(StorageDriverError) {
        guard try driver.stat(path).kind == .directory else { throw StorageDriverError.pathNotFound(path.value) }
        self.init(driver: driver, path: path)
    }

    func entries() throws(StorageDriverError) -> [DirectoryEntry] {
        try driver.list(path).compactMap { name in
            guard let child = try? path.appending(name), let info = try? driver.stat(child) else { return nil }
            return DirectoryEntry(name: name, kind: info.kind)
        }
    }

    func directory(_ name: String) throws(StorageDriverError) -> any DriverDirectory {
        try PathDirectory(driver: driver, checking: try path.appending(name))
    }

    func open(_ relative: String) throws(StorageDriverError) -> OpenedFile {
        let child = try DriverPath(path.value + "/" + relative)
        let info = try driver.stat(child)
        return OpenedFile(kind: info.kind, size: info.size, reader: info.kind == .file ? try driver.reader(child) : nil)
    }

    func stat(_ relative: String) throws(StorageDriverError) -> FileInfo {
        try driver.stat(try DriverPath(path.value + "/" + relative))
    }
}
