import CLinux
import Glibc
import Synchronization

/// Appends to one file; the directory descriptor is kept so that `cancel` removes exactly the
/// file that was opened.
final class FilesystemFileWriter: DriverFileWriter {
    private struct State {
        var fd: Int32
        var size: Int64
    }

    private let parentFD: Int32
    private let path: DriverPath
    /// The innermost lock of a write: callers take it inside their own (an `UploadWriter`'s
    /// state lock), and nothing is locked while it is held.
    private let state: Mutex<State>

    init(fd: Int32, parentFD: Int32, path: DriverPath, size: Int64) {
        self.parentFD = parentFD
        self.path = path
        self.state = Mutex(State(fd: fd, size: size))
    }

    deinit {
        close()
        Glibc.close(parentFD)
    }

    var size: Int64 { state.withLock { $0.size } }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            guard state.fd >= 0 else { throw StorageDriverError.io(operation: "write", path: path.value, errno: EBADF) }
            try writeAll(state.fd, bytes, at: state.size, path)
            state.size += Int64(bytes.count)
        }
    }

    func commit() throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            guard state.fd >= 0 else { throw StorageDriverError.io(operation: "fsync", path: path.value, errno: EBADF) }
            guard fsync(state.fd) == 0 else { throw StorageDriverError.io(operation: "fsync", path: path.value, errno: errno) }
        }
    }

    func close() {
        state.withLock { state in
            if state.fd >= 0 { Glibc.close(state.fd) }
            state.fd = -1
        }
    }

    func cancel() throws(StorageDriverError) {
        close()
        if unlinkat(parentFD, path.name, 0) != 0 && errno != ENOENT {
            throw StorageDriverError.io(operation: "unlink", path: path.value, errno: errno)
        }
    }
}
