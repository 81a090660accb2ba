import Distribution
import Logging
import StorageDriver

/// The registry's global blobStatter: a driver stat of `blobs/<alg>/<xx>/<hex>/data`. Never
/// consults links; cannot record or forget descriptors.
public struct GlobalBlobStatter: BlobDescriptorService {
    let driver: any StorageDriver
    let logger: Logger

    /// As the registry answers: a data file that is not a regular file is an unknown blob.
    public func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
        do {
            return try dataFile(digest).descriptor
        } catch .notRegularFile(_, let path) {
            logger.warning("blob data is not a regular file: treating the blob as absent", metadata: ["path": "\(path)"])
            throw .unknown(digest)
        }
    }

    /// The blob's data file as the disk has it now: its descriptor and modification time;
    /// `notRegularFile` for a directory, FIFO, device or socket.
    func dataFile(_ digest: Digest) throws(BlobError) -> BlobDataFile {
        let info: FileInfo
        do throws(StorageDriverError) {
            // Below `blobs/<alg>`, which a driver that can holds open (a cold lookup's stat).
            info = try driver.stat(PathMapper.dataFile(below: digest), below: PathMapper.blobDirectory(digest.algorithm))
        } catch .pathNotFound {
            throw .unknown(digest)
        } catch {
            throw error.blobError
        }
        // A damaged store, which a mount reports (EIO, logged) rather than hides.
        guard info.kind == .file else { throw .notRegularFile(digest, path: info.path.value) }
        return BlobDataFile(descriptor: Descriptor(digest: digest, size: info.size), modified: info.modified)
    }

    public func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError) {
        throw .unsupported("set a descriptor on the global blob statter")
    }

    public func clear(_ digest: Digest) throws(BlobError) {
        throw .unsupported("clear a descriptor on the global blob statter")
    }
}
