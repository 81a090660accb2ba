import Glibc
import StorageDriver
import Synchronization

/// Positional reads of one object with ranged GETs that always name their end byte, so the server
/// streams no more than is read. Reads smaller than a block fetch the whole aligned block and keep
/// it (one per reader), so that the kernel's 128 KiB reads of a file cost one GET per block; a read
/// of a block or more goes straight into the caller's buffer (libcurl writes the body there: no
/// copy of ours). A read fills its buffer unless it
/// reaches the end, as a regular file's does.
final class S3FileReader: DriverFileReader {
    private let driver: S3Driver
    private let path: DriverPath
    private let key: String
    /// The version opened; every later request names it (If-Match), so a replaced object fails
    /// instead of mixing bytes of two versions. Empty where the server sent none.
    private let etag: String

    private struct Block {
        var start: Int64
        var bytes: [UInt8]
        var end: Int64 { start + Int64(bytes.count) }
    }

    private struct State {
        /// From HEAD at open (or the first block's Content-Range), updated by every answer.
        var size: Int64
        var block: Block?
    }

    /// Held only to copy in or out, never across a request.
    private let state: Mutex<State>

    /// `firstBlock`: bytes from offset 0 already fetched by whoever opened the object.
    init(driver: S3Driver, path: DriverPath, size: Int64, etag: String, firstBlock: [UInt8]?) {
        self.driver = driver
        self.path = path
        self.etag = etag
        key = driver.key(path)
        state = Mutex(State(size: size, block: firstBlock.map { Block(start: 0, bytes: $0) }))
    }

    /// Opens with a GET of the first block instead of a HEAD: one request that says the size
    /// and brings the start of the content (a small file's whole content).
    static func open(driver: S3Driver, path: DriverPath) throws(StorageDriverError) -> S3FileReader {
        let blockSize = Int64(driver.tuning.readBlockSize)
        let key = driver.key(path)
        let answer = try driver.call("get", path) { () throws(S3Failure) in try driver.client.getRange(key, first: 0, last: blockSize - 1) }
        guard let answer else {
            // 416: an empty object has no byte 0 (a missing one is 404). Nothing to read, no version to hold.
            return S3FileReader(driver: driver, path: path, size: 0, etag: "", firstBlock: [])
        }
        return S3FileReader(driver: driver, path: path, size: answer.objectSize, etag: answer.etag, firstBlock: answer.bytes)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        guard offset >= 0 else { throw .io(operation: "s3 read", path: path.value, errno: EINVAL) }
        let blockSize = Int64(driver.tuning.readBlockSize)
        var filled = 0
        while filled < buffer.count {
            let position = offset + Int64(filled)
            let (size, copied) = state.withLock { state -> (Int64, Int) in
                guard let block = state.block, block.start <= position, position < block.end else { return (state.size, 0) }
                let n = Int(min(Int64(buffer.count - filled), block.end - position))
                block.bytes.withUnsafeBytes { source in
                    (buffer.baseAddress! + filled).copyMemory(from: source.baseAddress! + Int(position - block.start), byteCount: n)
                }
                // A caller that reads whole blocks (the blob cache's fetch and read-ahead) never
                // comes back for a kept block: the first block its open fetched goes now, not
                // at its close (eight streams of one blob held 32 MiB of first blocks).
                if buffer.count >= blockSize { state.block = nil }
                return (state.size, n)
            }
            if copied > 0 {
                filled += copied
                continue
            }
            guard position < size else { break }
            let wanted = min(Int64(buffer.count - filled), size - position)
            if wanted >= blockSize {
                // A large read: libcurl writes straight into the caller's buffer, no block kept.
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + Int(wanted))])
                guard let count = try fetch(first: position, into: target), count > 0 else { break }
                filled += count
            } else {
                let start = position / blockSize * blockSize
                let length = Int(min(start + blockSize, size) - start)
                var count = 0
                var failure: StorageDriverError?
                let bytes = [UInt8](unsafeUninitializedCapacity: length) { block, initialized in
                    do throws(StorageDriverError) {
                        count = try fetch(first: start, into: UnsafeMutableRawBufferPointer(block)) ?? 0
                    } catch {
                        failure = error
                    }
                    initialized = count
                }
                if let failure { throw failure }
                guard count > 0 else { break }
                state.withLock { $0.block = Block(start: start, bytes: bytes) }
                if start + Int64(count) <= position { break }  // the object shrank below the read
            }
        }
        return filled
    }

    /// One ranged GET of exactly the bytes asked (or the end of the object), straight into the
    /// caller's buffer: a random reader of a blob larger than the cache pays for what it reads,
    /// not for a block around it. A kept first block still serves what it holds.
    func readRange(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        guard offset >= 0 else { throw .io(operation: "s3 read", path: path.value, errno: EINVAL) }
        let copied = state.withLock { state -> Int? in
            guard let block = state.block, block.start <= offset, offset < block.end else { return nil }
            let n = Int(min(Int64(buffer.count), block.end - offset))
            block.bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + Int(offset - block.start), byteCount: n)
            }
            return n
        }
        if let copied { return copied }
        let size = knownSize
        guard offset < size, !buffer.isEmpty else { return 0 }
        let wanted = Int(min(Int64(buffer.count), size - offset))
        return try fetch(first: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted])) ?? 0
    }

    /// One ranged GET of the whole range, its body written into the file as libcurl hands it over,
    /// in aligned 128 KiB pieces while each is still in the CPU's cache (`BodyDestination.file`:
    /// no buffer of the range's size, no second pass over the bytes before the file has them). A first block kept from the open
    /// is written from memory instead of being asked for again.
    func copy(at offset: Int64, count: Int, intoFile descriptor: Int32, localPath: String) throws(StorageDriverError) -> Int {
        guard offset >= 0, count >= 0 else { throw .io(operation: "s3 read", path: path.value, errno: EINVAL) }
        var copied = 0
        let kept = state.withLock { state -> Block? in
            guard let block = state.block, block.start <= offset, offset < block.end else { return nil }
            state.block = nil
            return block
        }
        if let kept {
            let n = Int(min(Int64(count), kept.end - offset))
            let from = Int(offset - kept.start)
            let failure = kept.bytes.withUnsafeBytes { bytes -> StorageDriverError? in
                do throws(StorageDriverError) {
                    try LocalWrite.all(UnsafeRawBufferPointer(rebasing: bytes[from..<(from + n)]), to: descriptor, at: offset, path: localPath)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure { throw failure }
            copied = n
        }
        let position = offset + Int64(copied)
        guard copied < count, position < knownSize else { return copied }
        let answer: S3Client.RangeInto?
        do throws(S3Failure) {
            answer = try driver.client.getRange(
                key, first: position, count: count - copied, intoFile: descriptor, at: position, ifMatch: etag.isEmpty ? nil : etag)
        } catch .localWrite(_, let code) {
            throw .io(operation: "write", path: localPath, errno: code)
        } catch {
            throw error.driverError(operation: "s3 get range", path: path)
        }
        state.withLock { $0.size = answer?.objectSize ?? min($0.size, position) }
        return copied + (answer?.count ?? 0)
    }

    /// One ranged GET of `destination.count` bytes from `first`, written into `destination`: how
    /// many came; nil (and the size cut there) when the object ends before `first`.
    private func fetch(first: Int64, into destination: UnsafeMutableRawBufferPointer) throws(StorageDriverError) -> Int? {
        let answer = try driver.call("get range", path) { () throws(S3Failure) in
            try driver.client.getRange(key, first: first, into: destination, ifMatch: etag.isEmpty ? nil : etag)
        }
        state.withLock { $0.size = answer?.objectSize ?? min($0.size, first) }
        return answer?.count
    }

    /// The size as last seen, without a request.
    var knownSize: Int64 { state.withLock { $0.size } }

    /// HEAD: the size of the version opened (ESTALE once it was replaced).
    func currentSize() throws(StorageDriverError) -> Int64 {
        let head = try driver.call("head", path) { () throws(S3Failure) in try driver.client.head(key, ifMatch: etag.isEmpty ? nil : etag) }
        state.withLock { $0.size = head.size }
        return head.size
    }
}
