import Distribution
import StorageDriver

/// Reads a data file from offset 0 to its end in 1 MiB pieces and hashes it under several
/// algorithms in one pass: the one loop behind every whole-file hash (the first read of a blob
/// in a mount, `blobfs verify`, the commit of a resumed upload). Its buffer and digesters are
/// kept for the next file, so one hasher per thread reads any number of files without
/// allocating; it is not for two threads at once.
public final class WholeFileHasher {
    /// What a whole-file hash found.
    public struct Hash: Sendable, Hashable {
        /// The digests, in the order the algorithms were asked for.
        public var digests: [Digest]
        /// The bytes hashed: the file's length as it was read.
        public var size: Int64
        /// When asked for, the data file's version, if it stayed the same from before the first
        /// piece to after the last (only then is it the version that was hashed); nil when it
        /// changed, or where the driver cannot tell.
        public var version: FileVersion?
    }

    /// A read failed: the error, and how many bytes were hashed before it.
    public struct ReadFailure: Error {
        public var error: BlobError
        public var bytesHashed: Int64
    }

    /// The size of one piece: large enough that a system call per piece costs nothing.
    public static let pieceSize = 1 << 20

    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: WholeFileHasher.pieceSize, alignment: 4096)
    private var digesters: [DigestAlgorithm: Digester] = [:]
    /// Called with the length of each piece once it is hashed (progress inside a large file).
    private let onPiece: (Int) -> Void

    public init(onPiece: @escaping (Int) -> Void = { _ in }) {
        self.onPiece = onPiece
    }

    deinit { buffer.deallocate() }

    /// Hashes what `reader` has open. `size` is the file's size when it was opened: a short read
    /// that reaches it is taken as the end, which saves the final empty read of every small file;
    /// otherwise the file is read until a read returns nothing. With `readsVersion`, the result
    /// carries the version the file kept while it was read (two more `fstat`s).
    public func hash(
        _ reader: any DriverFileReader, size: Int64, algorithms: [DigestAlgorithm], readsVersion: Bool = false
    ) throws(ReadFailure) -> Hash {
        try hash(
            size: size, algorithms, readsVersion: readsVersion,
            read: { (buffer, offset) throws(BlobError) in
                try driverCall { () throws(StorageDriverError) in try reader.read(into: buffer, at: offset) }
            },
            version: { () throws(BlobError) in try driverCall { () throws(StorageDriverError) in try reader.version() } })
    }

    /// Hashes a blob's data file from 0 to its descriptor's size; a file shorter than that fails
    /// as the reader's reads do (`BlobError.truncated`).
    public func hash(_ reader: DataFileReader, algorithms: [DigestAlgorithm], readsVersion: Bool = false) throws(ReadFailure) -> Hash {
        try hash(size: reader.descriptor.size, algorithms, readsVersion: readsVersion, read: reader.read(into:at:), version: reader.version)
    }

    private func hash(
        size: Int64, _ algorithms: [DigestAlgorithm], readsVersion: Bool,
        read: (UnsafeMutableRawBufferPointer, Int64) throws(BlobError) -> Int, version: () throws(BlobError) -> FileVersion?
    ) throws(ReadFailure) -> Hash {
        let before = readsVersion ? try? version() : nil
        let used = algorithms.map { algorithm in
            let digester = digesters[algorithm] ?? Digester(algorithm)
            digesters[algorithm] = digester
            digester.reset()
            return digester
        }
        var offset: Int64 = 0
        do throws(BlobError) {
            while true {
                let n = try read(buffer, offset)
                if n == 0 { break }
                let piece = UnsafeRawBufferPointer(rebasing: buffer[..<n])
                for digester in used { digester.update(piece) }
                offset += Int64(n)
                onPiece(n)
                if n < buffer.count && offset >= size { break }
            }
        } catch {
            throw ReadFailure(error: error, bytesHashed: offset)
        }
        // Only a version that stayed the same while it was read is the one that was hashed.
        let after = before == nil ? nil : try? version()
        return Hash(digests: used.map { $0.digest() }, size: offset, version: before == after ? before : nil)
    }
}
