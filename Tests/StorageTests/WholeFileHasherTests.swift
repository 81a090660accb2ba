import Distribution
import Glibc
import Storage
import StorageDriver
import Synchronization
import TestSupport
import Testing

/// The one whole-file hash loop: every algorithm in one pass, a hasher reused across files, the
/// version a file kept while it was read, progress, and what a failed read had hashed.
@Suite struct WholeFileHasherTests {
    /// A file of 2.5 pieces, so that the last read is a short one.
    let bytes = seededBytes(count: 5 * WholeFileHasher.pieceSize / 2, seed: 77)

    @Test func hashesEveryAlgorithmInOnePassAndReportsEachPiece() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let driver = try FilesystemDriver(root: directory.path)
        let path = try DriverPath("/large")
        try driver.putContent(path, bytes)
        let pieces = Mutex<[Int]>([])
        let hasher = WholeFileHasher { n in pieces.withLock { $0.append(n) } }
        let reader = try driver.reader(path)
        let hash = try hasher.hash(reader, size: Int64(bytes.count), algorithms: [.sha256, .sha512], readsVersion: true)
        #expect(hash.digests == [Digester.digest(of: bytes, algorithm: .sha256), Digester.digest(of: bytes, algorithm: .sha512)])
        #expect(hash.size == Int64(bytes.count))
        #expect(pieces.withLock { $0 } == [WholeFileHasher.pieceSize, WholeFileHasher.pieceSize, WholeFileHasher.pieceSize / 2])
        let version = try #require(try reader.version())
        #expect(hash.version == version)
        #expect(version.size == Int64(bytes.count))

        // The same hasher, the next file: nothing of the first is left in its digesters.
        let small: [UInt8] = [1, 2, 3]
        try driver.putContent(path, small)
        let again = try hasher.hash(try driver.reader(path), size: 3, algorithms: [.sha384, .sha256])
        #expect(again.digests == [Digester.digest(of: small, algorithm: .sha384), Digester.digest(of: small)])
        #expect(again.size == 3)
        #expect(again.version == nil, "not asked for")
    }

    @Test func anEmptyFileIsTheDigestOfNothing() throws {
        let driver = InMemoryDriver()
        let path = try DriverPath("/empty")
        try driver.putContent(path, [])
        let hash = try WholeFileHasher().hash(try driver.reader(path), size: 0, algorithms: [.sha256])
        #expect(hash.digests == [Digester.digest(of: [])])
        #expect(hash.size == 0)
    }

    @Test func aVersionThatChangedWhileHashingIsNone() throws {
        let reader = ChangingReader(bytes: bytes)
        let hash = try WholeFileHasher().hash(reader, size: Int64(bytes.count), algorithms: [.sha256], readsVersion: true)
        #expect(hash.digests == [Digester.digest(of: bytes)])
        #expect(hash.version == nil)
    }

    @Test func aFailedReadSaysHowMuchWasHashed() throws {
        let reader = ChangingReader(bytes: bytes, failsAt: Int64(WholeFileHasher.pieceSize))
        let failure = try #require(throws: WholeFileHasher.ReadFailure.self) {
            try WholeFileHasher().hash(reader, size: Int64(bytes.count), algorithms: [.sha256])
        }
        #expect(failure.bytesHashed == Int64(WholeFileHasher.pieceSize))
        #expect(failure.error == .io(operation: "read", path: "/changing", errno: EIO))
    }
}

/// A reader whose version moves with every read, and which can fail at an offset.
private final class ChangingReader: DriverFileReader {
    let bytes: [UInt8]
    let failsAt: Int64?
    private let reads = Atomic(0)

    init(bytes: [UInt8], failsAt: Int64? = nil) {
        self.bytes = bytes
        self.failsAt = failsAt
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        if offset == failsAt { throw .io(operation: "read", path: "/changing", errno: EIO) }
        reads.add(1, ordering: .relaxed)
        let start = Int(offset)
        let n = max(0, min(buffer.count, bytes.count - start))
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + start, byteCount: n) }
        return n
    }

    func currentSize() throws(StorageDriverError) -> Int64 { Int64(bytes.count) }

    func version() throws(StorageDriverError) -> FileVersion? {
        FileVersion(device: 1, inode: 1, size: Int64(bytes.count), modified: Int64(reads.load(ordering: .relaxed)), changed: 0)
    }
}
