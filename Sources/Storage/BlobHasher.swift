import Distribution
import StorageDriver
import Synchronization

/// What reading a data file through to its end found.
enum HashResult: Sendable {
    /// The digests, in the order the algorithms were asked for, the bytes hashed, and — when the
    /// hasher was asked for it — the file's version, if it stayed the same while it was read.
    case hashed([Digest], size: Int64, version: FileVersion?)
    /// The file could not be read: why, and the bytes read before.
    case failed(String, bytes: Int64)
}

/// Bytes read by every worker of a verification, for the progress display while a large file is
/// still being hashed.
final class ByteCounter: Sendable {
    let value = Atomic<Int64>(0)
}

/// One worker thread's read buffer and digesters, reused for every file it reads.
final class BlobHasher {
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    private var digesters: [DigestAlgorithm: Digester] = [:]
    private let counter: ByteCounter
    /// Called after each chunk of a file (the calling thread's progress).
    private let onChunk: () -> Void
    /// Whether results carry the file's version (two more `fstat`s per file).
    private let readsVersions: Bool

    init(counter: ByteCounter, readsVersions: Bool = false, onChunk: @escaping () -> Void = {}) {
        self.counter = counter
        self.readsVersions = readsVersions
        self.onChunk = onChunk
    }

    deinit { buffer.deallocate() }

    /// Hashes an opened regular file under every algorithm in one pass.
    func hash(_ file: OpenedFile, _ algorithms: [DigestAlgorithm]) -> HashResult {
        guard let reader = file.reader else {
            return .hashed(algorithms.map { Digester.digest(of: [], algorithm: $0) }, size: 0, version: nil)
        }
        let before = readsVersions ? try? reader.version() : nil
        let used = algorithms.map { algorithm in
            let digester = digesters[algorithm] ?? Digester(algorithm)
            digesters[algorithm] = digester
            digester.reset()
            return digester
        }
        var total: Int64 = 0
        do {
            total = try read(reader, size: file.size, chunk: buffer.count) { bytes in
                for digester in used { digester.update(bytes) }
                counter.value.add(Int64(bytes.count), ordering: .relaxed)
                onChunk()
            }
        } catch {
            return .failed("\(error)", bytes: used.first?.count ?? 0)
        }
        // Only a version that stayed the same while it was read is the one that was hashed.
        let version = before.flatMap { before in (try? reader.version()) == before ? before : nil }
        return .hashed(used.map { $0.digest() }, size: total, version: version)
    }

    /// The whole content of an opened small file; `tooLarge` past `limit` bytes.
    func content(_ file: OpenedFile, path: @autoclosure () -> DriverPath, limit: Int) throws -> [UInt8] {
        guard file.size <= limit else { throw StorageDriverError.tooLarge(path().value, size: file.size, limit: limit) }
        guard let reader = file.reader else { return [] }
        var content: [UInt8] = []
        let total = try read(reader, size: file.size, chunk: min(buffer.count, limit + 1)) { bytes in
            content.append(contentsOf: bytes)
        }
        // Grown past the limit since it was opened.
        if total > limit { throw StorageDriverError.tooLarge(path().value, size: total, limit: limit) }
        return content
    }

    /// Reads from offset 0 to the end, a chunk at a time; returns the bytes read. A short read
    /// that reaches `size` (what fstat said at the open) is taken as the end, which saves the
    /// final empty read of every small file.
    private func read(
        _ reader: any DriverFileReader, size: Int64, chunk: Int, _ body: (UnsafeRawBufferPointer) -> Void
    ) throws -> Int64 {
        let window = UnsafeMutableRawBufferPointer(rebasing: buffer[..<chunk])
        var offset: Int64 = 0
        while true {
            let n = try reader.read(into: window, at: offset)
            if n == 0 { return offset }
            body(UnsafeRawBufferPointer(rebasing: window[..<n]))
            offset += Int64(n)
            if n < chunk && offset >= size { return offset }
        }
    }
}
