@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Synchronization
import Testing

/// A BlobFileSystem over an in-memory store, driven by calling its operations directly: no kernel,
/// no mount. What the filesystem would have told the kernel is recorded.
struct OperationFixture {
    let driver: InMemoryDriver
    let registry: Registry
    let fs: BlobFileSystem
    let notices: NoticeRecorder

    init(readWrite: Bool = true, allowDelete: Bool = false, directoryTimeout: Double = 1, ociView: Bool = false, hardLinks: Bool = false) {
        driver = InMemoryDriver()
        registry = Registry(driver: driver, deleteEnabled: allowDelete)
        var options = MountOptions(storageRoot: "/")
        options.readWrite = readWrite
        options.allowDelete = allowDelete
        options.directoryTimeout = directoryTimeout
        options.ociView = ociView
        options.hardLinks = hardLinks
        fs = BlobFileSystem(registry: registry, options: options)
        notices = NoticeRecorder()
        let recorder = notices
        fs.notices.withLock { $0 = recorder }
    }

    /// Links `bytes` as a blob of `repository`, as a registry push would.
    @discardableResult
    func push(_ bytes: [UInt8], to repository: String) throws -> Digest {
        try registry.repository(repository).blobs.put(mediaType: "application/octet-stream", bytes).digest
    }

    /// The inode of `path` below the mount ("repo", "repo/team/app/blobs", …), looked up one
    /// component at a time as the kernel does.
    func inode(_ path: String) throws -> UInt64 {
        var ino = InodeTable.rootID
        for component in path.split(separator: "/") {
            guard let entry = try fs.lookup(parent: ino, name: String(component)) else { throw FixtureError.noSuchPath(path) }
            ino = entry.ino
        }
        return ino
    }

    /// The whole content of a blob file, through open and read.
    func contents(of ino: UInt64, size: Int) throws -> [UInt8] {
        let opened = try fs.open(ino: ino, flags: O_RDONLY)
        defer { fs.release(handle: opened.handle) }
        var result = [UInt8](repeating: 0, count: size)
        let n = try result.withUnsafeMutableBytes { try fs.read(handle: opened.handle, offset: 0, into: $0) }
        return Array(result[..<n])
    }

    /// Creates `name` in `directory`, writes `bytes`, closes it (flush, then release); returns
    /// what flush threw, if anything.
    func write(_ bytes: [UInt8], as name: String, in directory: UInt64) throws -> FileSystemError? {
        let created = try fs.create(parent: directory, name: name)
        defer { fs.release(handle: created.open.handle) }
        _ = try bytes.withUnsafeBytes { try fs.write(handle: created.open.handle, bytes: $0, offset: 0) }
        do {
            try fs.flush(handle: created.open.handle)
            return nil
        } catch {
            return error
        }
    }
}

enum FixtureError: Error {
    case noSuchPath(String)
}

/// Records the notices the filesystem sends to the kernel.
final class NoticeRecorder: KernelNotices {
    private let state = Mutex<(entries: [String], pages: [UInt64])>(([], []))

    func forgetEntry(parent: UInt64, name: String) {
        state.withLock { $0.entries.append("\(parent)/\(name)") }
    }

    func dropPages(of inode: UInt64) {
        state.withLock { $0.pages.append(inode) }
    }

    var forgottenEntries: [String] { state.withLock { $0.entries } }
    var droppedPages: [UInt64] { state.withLock { $0.pages } }
}

/// The errno an operation's failure becomes; nil when it succeeds. A failure that is not the
/// filesystem's own error (a fixture step that failed) is -1, which no expectation accepts.
func errnoOf<T>(_ body: () throws -> T) -> Int32? {
    do {
        _ = try body()
        return nil
    } catch let error as FileSystemError {
        return errnoValue(for: error)
    } catch {
        Issue.record("not a FileSystemError: \(error)")
        return -1
    }
}
