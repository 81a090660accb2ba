import Distribution
import Storage
import StorageDriver
import Synchronization

/// What reading a data file through to its end found.
enum HashResult: Sendable {
    /// The digests, in the order the algorithms were asked for, the bytes hashed, and — when the
    /// worker was asked for it — the file's version, if it stayed the same while it was read.
    case hashed([Digest], size: Int64, version: FileVersion?)
    /// The file could not be read: why, and the bytes read before.
    case failed(String, bytes: Int64)
}

/// Bytes read by every worker of a scrub, for the progress display while a large file is still
/// being hashed.
final class ByteCounter: Sendable {
    let value = Atomic<Int64>(0)
}

/// One thread's reading state, reused for every file it reads: a whole-file hasher for data
/// files and a buffer for link files.
final class ScrubWorker {
    private let hasher: WholeFileHasher
    /// Whether results carry the file's version (two more `fstat`s per file).
    private let readsVersions: Bool
    /// One byte more than a link may hold, so that a link that grew past the limit is seen.
    private let linkBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: LinkedBlobStatter.linkLimit + 1, alignment: 16)

    /// `onPiece` runs after each piece of a data file, on this worker's thread.
    init(counter: ByteCounter, readsVersions: Bool, onPiece: @escaping () -> Void = {}) {
        self.readsVersions = readsVersions
        hasher = WholeFileHasher { bytes in
            counter.value.add(Int64(bytes), ordering: .relaxed)
            onPiece()
        }
    }

    deinit { linkBuffer.deallocate() }

    /// Hashes an opened regular file under every algorithm in one pass.
    func hash(_ file: OpenedFile, _ algorithms: [DigestAlgorithm]) -> HashResult {
        guard let reader = file.reader else {
            return .hashed(algorithms.map { Digester.digest(of: [], algorithm: $0) }, size: 0, version: nil)
        }
        do {
            let hash = try hasher.hash(reader, size: file.size, algorithms: algorithms, readsVersion: readsVersions)
            return .hashed(hash.digests, size: hash.size, version: hash.version)
        } catch {
            return .failed("\(error.error)", bytes: error.bytesHashed)
        }
    }

    /// The whole content of an opened link file, or why it cannot be had: `tooLarge` past
    /// `LinkedBlobStatter.linkLimit` bytes, as `StorageDriver.getContent` reports it to a mount.
    func linkContent(_ file: OpenedFile, path: @autoclosure () -> DriverPath) -> Result<[UInt8], StorageDriverError> {
        let limit = LinkedBlobStatter.linkLimit
        guard file.size <= limit else { return .failure(.tooLarge(path().value, size: file.size, limit: limit)) }
        guard let reader = file.reader else { return .success([]) }
        var offset = 0
        do {
            // Until a read returns nothing, or a short one reaches the size fstat gave at the open.
            while offset < linkBuffer.count {
                let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: linkBuffer[offset...]), at: Int64(offset))
                if n == 0 { break }
                offset += n
                if offset >= file.size && offset < linkBuffer.count { break }
            }
        } catch {
            return .failure(error)
        }
        // Grown past the limit since it was opened.
        if offset > limit { return .failure(.tooLarge(path().value, size: Int64(offset), limit: limit)) }
        return .success(Array(UnsafeRawBufferPointer(rebasing: linkBuffer[..<offset])))
    }
}
