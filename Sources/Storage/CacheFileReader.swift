import Distribution
import Glibc
import StorageDriver

/// Positional reads of one published cache file, open with a shared `flock` on it: while the
/// lock is held no daemon on the same cache directory evicts the file (an evictor must take it
/// exclusively first). Closing the reader releases both the descriptor and the lock, and tells
/// the cache the blob is one reader less in use.
final class CacheFileReader: DriverFileReader {
    private let fd: Int32
    /// The cache file's path, for errors.
    private let path: String
    private let release: @Sendable () -> Void

    init(fd: Int32, path: String, release: @escaping @Sendable () -> Void) {
        self.fd = fd
        self.path = path
        self.release = release
    }

    deinit {
        Glibc.close(fd)
        release()
    }

    var localDescriptor: Int32? { fd }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = pread(fd, base, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw .io(operation: "read", path: path, errno: errno) }
        }
    }

    func version() throws(StorageDriverError) -> FileVersion? {
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        return FileVersion(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
            modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            changed: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
    }

    func currentSize() throws(StorageDriverError) -> Int64 {
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        return Int64(st.st_size)
    }
}
