import Glibc
import Synchronization

/// A driver that keeps files in memory, for fast unit tests; directories exist implicitly above
/// files and explicitly once created empty.
public final class InMemoryDriver: StorageDriver {
    public var name: String { "inmemory" }

    final class File: Sendable {
        /// The innermost lock: taken inside the driver's `state` (stat) and inside a caller's own
        /// (an `UploadWriter`'s state lock, around a write); nothing is locked while it is held.
        let content: Mutex<[UInt8]>
        let modified: Int64
        init(_ content: [UInt8]) {
            self.content = Mutex(content)
            self.modified = Int64(time(nil))
        }
    }

    private struct State {
        var files: [DriverPath: File] = [:]
        /// Directories created explicitly (others exist implicitly above files).
        var directories: Set<DriverPath> = []
    }

    private let state = Mutex(State())

    public init() {}

    public func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        let file = try lookup(path)
        let content = file.content.withLock { $0 }
        if content.count > limit { throw StorageDriverError.tooLarge(path.value, size: Int64(content.count), limit: limit) }
        return content
    }

    public func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            try Self.checkParents(of: path, in: state)
            if Self.isDirectory(path, in: state) { throw StorageDriverError.isDirectory(path.value) }
            state.files[path] = File(content)
        }
    }

    public func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader {
        InMemoryFileReader(file: try lookup(path))
    }

    public func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter {
        let file = try state.withLock { (state) throws(StorageDriverError) in
            try Self.checkParents(of: path, in: state)
            if Self.isDirectory(path, in: state) { throw StorageDriverError.isDirectory(path.value) }
            if append, let existing = state.files[path] { return existing }
            let file = File([])
            state.files[path] = file
            return file
        }
        return InMemoryFileWriter(driver: self, file: file, path: path)
    }

    public func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        try state.withLock { (state) throws(StorageDriverError) in
            if let file = state.files[path] {
                return FileInfo(path: path, kind: .file, size: Int64(file.content.withLock { $0.count }), modified: file.modified)
            }
            guard Self.isDirectory(path, in: state) else { throw StorageDriverError.pathNotFound(path.value) }
            return FileInfo(path: path, kind: .directory, size: 0, modified: 0)
        }
    }

    public func createDirectory(_ path: DriverPath) throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            try Self.checkParents(of: path, in: state)
            if state.files[path] != nil {
                throw StorageDriverError.io(operation: "mkdir (a file is in the way)", path: path.value, errno: EEXIST)
            }
            var directory: DriverPath? = path
            while let d = directory {
                state.directories.insert(d)
                directory = d.parent
            }
        }
    }

    public func list(_ path: DriverPath) throws(StorageDriverError) -> [String] {
        try state.withLock { (state) throws(StorageDriverError) in try Self.children(of: path, in: state) }.sorted()
    }

    /// The names of a directory's children, in no order.
    private static func children(of path: DriverPath, in state: State) throws(StorageDriverError) -> Set<String> {
        guard isDirectory(path, in: state) else {
            throw state.files[path] != nil
                ? StorageDriverError.io(operation: "list", path: path.value, errno: ENOTDIR)
                : StorageDriverError.pathNotFound(path.value)
        }
        return Set(state.files.keys.compactMap { child(of: path, toward: $0) } + state.directories.compactMap { child(of: path, toward: $0) })
    }

    /// The names as `list` finds them, unsorted, handed over in batches as an object store's pages.
    public func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        let names = try state.withLock { (state) throws(StorageDriverError) in try Self.children(of: path, in: state) }
        try DirectoryNames.batches(of: names, body)  // without the lock: `body` may call the driver
    }

    public func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            guard let file = state.files[source] else { throw StorageDriverError.pathNotFound(source.value) }
            try Self.checkParents(of: destination, in: state)
            if Self.isDirectory(destination, in: state) { throw StorageDriverError.isDirectory(destination.value) }
            state.files[source] = nil
            state.files[destination] = file
        }
    }

    public func delete(_ path: DriverPath) throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            let doomed = state.files.keys.filter { $0.isWithin(path) }
            let doomedDirectories = state.directories.filter { $0.isWithin(path) }
            guard !doomed.isEmpty || !doomedDirectories.isEmpty else { throw StorageDriverError.pathNotFound(path.value) }
            for key in doomed { state.files[key] = nil }
            state.directories.subtract(doomedDirectories)
        }
    }

    public func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        // Snapshot, then visit without the lock so that `visit` may call back into the driver.
        let entries: [WalkEntry] = try state.withLock { (state) throws(StorageDriverError) in
            guard Self.isDirectory(path, in: state) else { throw StorageDriverError.pathNotFound(path.value) }
            var kinds: [DriverPath: FileKind] = [:]
            for key in state.directories where key.isWithin(path) && key != path {
                kinds[key] = .directory
            }
            for key in state.files.keys where key.isWithin(path) && key != path {
                kinds[key] = .file
                var parent = key.parent
                while let p = parent, p != path {
                    kinds[p] = .directory
                    parent = p.parent
                }
            }
            return kinds.map { WalkEntry(path: $0.key, kind: $0.value) }
        }
        // Depth-first in sorted order: sort by components so "a/b" comes right after "a".
        let sorted = entries.sorted { $0.path.components.lexicographicallyPrecedes($1.path.components) }
        var skipped: DriverPath?
        for entry in sorted {
            if let s = skipped, entry.path.isWithin(s) { continue }
            if try visit(entry) == .skipDirectory, entry.kind == .directory { skipped = entry.path }
        }
    }

    private func lookup(_ path: DriverPath) throws(StorageDriverError) -> File {
        try state.withLock { (state) throws(StorageDriverError) in
            if let file = state.files[path] { return file }
            throw Self.isDirectory(path, in: state)
                ? StorageDriverError.isDirectory(path.value) : StorageDriverError.pathNotFound(path.value)
        }
    }

    private static func isDirectory(_ path: DriverPath, in state: State) -> Bool {
        state.directories.contains(path) || state.files.keys.contains { $0 != path && $0.isWithin(path) }
    }

    /// A file cannot have children.
    private static func checkParents(of path: DriverPath, in state: State) throws(StorageDriverError) {
        var parent = path.parent
        while let p = parent {
            if state.files[p] != nil { throw StorageDriverError.io(operation: "mkdir (a file is in the way)", path: p.value, errno: ENOTDIR) }
            parent = p.parent
        }
    }

    /// The name of the child of `directory` on the way to `descendant`, if it lies below.
    private static func child(of directory: DriverPath, toward descendant: DriverPath) -> String? {
        guard descendant != directory, descendant.isWithin(directory) else { return nil }
        let rest = descendant.value.dropFirst(directory.value.count + 1)
        return String(rest.prefix { $0 != "/" })
    }

    fileprivate func remove(_ path: DriverPath, ifStill file: File) {
        state.withLock { state in
            if state.files[path] === file { state.files[path] = nil }
        }
    }
}

private final class InMemoryFileReader: DriverFileReader {
    let file: InMemoryDriver.File
    init(file: InMemoryDriver.File) { self.file = file }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        file.content.withLock { content in
            guard offset < content.count else { return 0 }
            let n = min(buffer.count, content.count - Int(offset))
            content.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + Int(offset), byteCount: n)
            }
            return n
        }
    }

    func currentSize() throws(StorageDriverError) -> Int64 { Int64(file.content.withLock { $0.count }) }
}

private final class InMemoryFileWriter: DriverFileWriter {
    let driver: InMemoryDriver
    let file: InMemoryDriver.File
    let path: DriverPath
    let closed = Atomic(false)

    init(driver: InMemoryDriver, file: InMemoryDriver.File, path: DriverPath) {
        self.driver = driver
        self.file = file
        self.path = path
    }

    var size: Int64 { Int64(file.content.withLock { $0.count }) }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageDriverError) {
        guard !closed.load(ordering: .acquiring) else {
            throw StorageDriverError.io(operation: "write", path: path.value, errno: EBADF)
        }
        file.content.withLock { $0.append(contentsOf: bytes) }
    }

    func commit() throws(StorageDriverError) {}

    func close() { closed.store(true, ordering: .releasing) }

    func cancel() throws(StorageDriverError) {
        close()
        driver.remove(path, ifStill: file)
    }
}
