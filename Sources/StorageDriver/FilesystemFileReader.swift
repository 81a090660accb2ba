import Glibc

/// Positional reads (pread) of one open file; safe to share between threads. Public so that a
/// reader of other local files (Storage's blob cache) reads them the same way.
public final class FilesystemFileReader: DriverFileReader {
    private let fd: Int32
    /// The driver path, for errors.
    private let path: String

    convenience init(fd: Int32, path: DriverPath) {
        self.init(fd: fd, path: path.value)
    }

    /// Takes `fd` over (it is closed with the reader); `path` names the file in errors.
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { Glibc.close(fd) }

    public var localDescriptor: Int32? { fd }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = pread(fd, base, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw StorageDriverError.io(operation: "read", path: path, errno: errno) }
        }
    }

    public func version() throws(StorageDriverError) -> FileVersion? {
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw StorageDriverError.io(operation: "stat", path: path, errno: errno) }
        return FileVersion(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
            modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            changed: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
    }

    public func currentSize() throws(StorageDriverError) -> Int64 {
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw StorageDriverError.io(operation: "stat", path: path, errno: errno) }
        return Int64(st.st_size)
    }
}
