import Foundation
import Glibc
import Synchronization

/// A fresh directory under /tmp that is deleted with everything in it when the owner lets it go.
public final class TemporaryDirectory: Sendable {
    /// Absolute path of the directory.
    public let path: String
    // Guards against a second removal racing the first (explicit remove() and deinit).
    private let removed = Mutex(false)

    /// Creates `/tmp/<prefix>.XXXXXX` with mkdtemp, so parallel tests never share a directory.
    public init(prefix: String = "blobfs-test") throws {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!)
        }
        guard let created else {
            throw TestSupportError("mkdtemp(/tmp/\(prefix).XXXXXX) failed: \(String(cString: strerror(errno)))")
        }
        path = String(cString: created)
    }

    /// Deletes the directory recursively; later calls do nothing.
    public func remove() {
        let alreadyRemoved = removed.withLock { removed in
            defer { removed = true }
            return removed
        }
        if alreadyRemoved { return }
        let fileManager = FileManager.default
        if (try? fileManager.removeItem(atPath: path)) != nil || !fileManager.fileExists(atPath: path) { return }
        // A test may have left directories without write or search permission; restore them and retry.
        makeOwnerAccessible(path)
        try? fileManager.removeItem(atPath: path)
    }

    deinit {
        remove()
    }
}

/// Gives the owner rwx on every directory below `path` (without following symlinks) so it can be deleted.
private func makeOwnerAccessible(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return }
    _ = chmod(path, (info.st_mode & 0o7777) | S_IRWXU)
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
    for entry in entries {
        makeOwnerAccessible(path + "/" + entry)
    }
}
