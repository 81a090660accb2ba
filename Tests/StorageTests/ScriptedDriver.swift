import Dispatch
import Glibc
import StorageDriver
import Synchronization

/// A driver over another one whose file writers misbehave on cue, for the upload state machine's
/// tests: a full disk after a number of bytes, and an fsync that waits until the test lets it go.
/// It also counts link reads and stats, for what a lookup costs.
final class ScriptedDriver: StorageDriver {
    let base: any StorageDriver
    /// Writes that would take a writer's file past this many bytes fail with ENOSPC (nothing of
    /// them is written, as a disk that is full from the start of the write).
    let spaceForEachFile: Int64?
    /// When set, each writer's `commit` (fsync) signals `entered` and waits for `release`.
    let fsyncGate: FsyncGate?

    init(base: any StorageDriver, spaceForEachFile: Int64? = nil, fsyncGate: FsyncGate? = nil) {
        self.base = base
        self.spaceForEachFile = spaceForEachFile
        self.fsyncGate = fsyncGate
    }

    var name: String { "scripted \(base.name)" }

    /// How many whole-file reads (links) and stats went through, for cost checks.
    let calls = Mutex(Calls())

    struct Calls: Sendable, Hashable {
        var getContent = 0
        var stat = 0
    }

    func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        calls.withLock { $0.getContent += 1 }
        return try base.getContent(path, limit: limit)
    }
    func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) { try base.putContent(path, content) }
    func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader { try base.reader(path) }
    func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        calls.withLock { $0.stat += 1 }
        return try base.stat(path)
    }
    func createDirectory(_ path: DriverPath) throws(StorageDriverError) { try base.createDirectory(path) }
    func list(_ path: DriverPath) throws(StorageDriverError) -> [String] { try base.list(path) }
    func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) {
        try base.move(from: source, to: destination)
    }
    func delete(_ path: DriverPath) throws(StorageDriverError) { try base.delete(path) }
    func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        try base.walk(path, visit)
    }
    func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory { try base.directory(path) }

    func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter {
        ScriptedFileWriter(base: try base.writer(path, append: append), path: path, space: spaceForEachFile, fsyncGate: fsyncGate)
    }
}

/// Holds fsyncs until the test releases them.
final class FsyncGate: Sendable {
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
}

private final class ScriptedFileWriter: DriverFileWriter {
    let base: any DriverFileWriter
    let path: DriverPath
    let space: Int64?
    let fsyncGate: FsyncGate?

    init(base: any DriverFileWriter, path: DriverPath, space: Int64?, fsyncGate: FsyncGate?) {
        self.base = base
        self.path = path
        self.space = space
        self.fsyncGate = fsyncGate
    }

    var size: Int64 { base.size }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageDriverError) {
        if let space, base.size + Int64(bytes.count) > space {
            throw StorageDriverError.io(operation: "write", path: path.value, errno: ENOSPC)
        }
        try base.write(bytes)
    }

    func commit() throws(StorageDriverError) {
        if let fsyncGate {
            fsyncGate.entered.signal()
            fsyncGate.release.wait()
        }
        try base.commit()
    }

    func close() { base.close() }
    func cancel() throws(StorageDriverError) { try base.cancel() }
}
