import Distribution
import Glibc
import StorageDriver

/// Positional reads of one published cache file, open with a shared `flock` on it: while the
/// lock is held no daemon on the same cache directory evicts the file (an evictor must take it
/// exclusively first). Closing the reader releases both the descriptor and the lock, and tells
/// the cache the blob is one reader less in use.
final class CacheFileReader: DriverFileReader {
    /// The file's reads, as the filesystem driver's (it closes the descriptor, and so drops the lock).
    private let file: FilesystemFileReader
    private let release: @Sendable () -> Void

    init(fd: Int32, path: String, release: @escaping @Sendable () -> Void) {
        file = FilesystemFileReader(fd: fd, path: path)
        self.release = release
    }

    deinit { release() }

    var localDescriptor: Int32? { file.localDescriptor }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        try file.read(into: buffer, at: offset)
    }

    func version() throws(StorageDriverError) -> FileVersion? { try file.version() }

    func currentSize() throws(StorageDriverError) -> Int64 { try file.currentSize() }
}
