import Distribution
import Glibc
import StorageDriver

/// A data file that is a file of the local filesystem, open: what the filesystem hands the kernel
/// to read directly (FUSE passthrough). The descriptor belongs to the `DataFileReader` it came
/// from and is valid only while that reader lives; `size` is the file's size by `fstat` now (the
/// kernel reads a passthrough file to its real end, not to the blob's size).
public struct LocalDataFile: Sendable {
    public let descriptor: Int32
    public let size: Int64
}

/// Reads a blob's `data` file with its size already known. Unlike the registry's fileReader,
/// a file that is missing or shorter than the blob is an error, never a short or empty read.
public final class DataFileReader: BlobReader {
    public let descriptor: Descriptor
    public let path: DriverPath
    /// The data file's path in the store, for messages: what a caller that knows no driver
    /// paths (the filesystem) names in its errors and logs.
    public var location: String { path.value }
    /// The bytes were hashed to `descriptor.digest` as they arrived, before this reader could
    /// serve one (a `BlobDataCache` file): the first-read verifier need not hash them again.
    public let verifiedOnArrival: Bool
    private let file: any DriverFileReader

    /// Opens the data file; a missing one is `dataMissing`.
    init(driver: any StorageDriver, descriptor: Descriptor) throws(BlobError) {
        let path = PathMapper.path(.blobData(descriptor.digest))
        do throws(StorageDriverError) {
            file = try driver.reader(path)
        } catch .pathNotFound, .isDirectory {
            throw .dataMissing(descriptor.digest, path: path.value)
        } catch {
            throw error.blobError
        }
        self.descriptor = descriptor
        self.path = path
        verifiedOnArrival = false
    }

    /// A reader over a file already open (`path` is the blob's data file in the store, for
    /// messages).
    init(descriptor: Descriptor, path: DriverPath, file: any DriverFileReader, verifiedOnArrival: Bool) {
        self.descriptor = descriptor
        self.path = path
        self.file = file
        self.verifiedOnArrival = verifiedOnArrival
    }

    /// Which version of the data file is open (nil where the driver cannot tell).
    public func version() throws(BlobError) -> DataFileVersion? {
        try driverCall { () throws(StorageDriverError) in try file.version() }
    }

    /// The data file as an open local file, or nil where the driver's files are not local files.
    public func localFile() throws(BlobError) -> LocalDataFile? {
        guard let fd = file.localDescriptor else { return nil }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            throw StorageDriverError.io(operation: "stat", path: path.value, errno: errno).blobError
        }
        return LocalDataFile(descriptor: fd, size: Int64(st.st_size))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlobError) -> Int {
        guard offset < descriptor.size, buffer.count > 0 else { return 0 }
        let wanted = Int(min(Int64(buffer.count), descriptor.size - offset))
        var filled = 0
        while filled < wanted {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<wanted])
            let n = try driverCall { () throws(StorageDriverError) in try file.read(into: chunk, at: offset + Int64(filled)) }
            if n == 0 {
                let actual = (try? file.currentSize()) ?? -1
                throw .truncated(descriptor.digest, path: path.value, expected: descriptor.size, actual: actual)
            }
            filled += n
        }
        return filled
    }
}
