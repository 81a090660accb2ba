import Distribution
import Glibc
import StorageDriver
import Synchronization

/// One blob's data brought from the driver into a local file with parallel ranged reads, and
/// hashed in order as it arrives: fixed blocks of `blockSize` (the last one shorter), each one
/// read with its explicit end (the S3 reader makes a read of a block or more one ranged GET of
/// exactly that range, written by libcurl straight into the block's buffer), up to
/// `parallelism` of them at a time. Each round's blocks are written into the file at their
/// offsets while the previous round's are hashed from the page cache, so the hash costs no extra
/// wall time. A round's buffers take their bytes from the process's `FetchMemoryBudget`: its
/// first block waits for them (up to `budgetWait`), the others are read in the same round only
/// if the budget gives them without waiting, and all go back when the round ends, so a fetch
/// under pressure goes on one block at a time instead of holding more.
struct BlobFetch {
    let blockSize: Int
    let parallelism: Int
    let budget: FetchMemoryBudget
    let budgetWait: Duration

    /// The file the data went into was filled and hashed; `digest` is what it hashes to.
    struct Arrived {
        var digest: Digest
    }

    /// Fills `fd` (an empty file) with `size` bytes of `source` and hashes them with
    /// `algorithm`. A source that ends early is `truncated`; any read failure is thrown as is,
    /// after every read in flight has ended.
    func fill(
        _ fd: Int32, from source: any DriverFileReader, size: Int64, digest name: Digest, sourcePath: String, filePath: String
    ) throws(BlobError) -> Arrived {
        let digester = Digester(name.algorithm)
        let blocks = Int((size + Int64(blockSize) - 1) / Int64(blockSize))
        let failure = Mutex<BlobError?>(nil)
        let hashBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { hashBuffer.deallocate() }
        let hashing = HashCursor(digester: digester, buffer: hashBuffer)
        var next = 0  // the first block of the round
        var hashedUpTo: Int64 = 0
        while next < blocks || hashedUpTo < size {
            let hashEnd = min(Int64(next) * Int64(blockSize), size)  // everything written by earlier rounds
            let lengths = try takeRound(from: next, of: blocks, size: size, path: filePath)
            let buffers = BlockBuffers(lengths)
            defer {
                buffers.deallocate()
                budget.release(lengths.reduce(0, +))
            }
            // This round's block reads, and the hash of what earlier rounds wrote beside them, in order.
            let from = hashedUpTo
            let first = next
            let reads = lengths.count
            FetchThreads.run(reads + (hashEnd > from ? 1 : 0)) { task in
                do throws(BlobError) {
                    if task < reads {
                        let start = Int64(first + task) * Int64(blockSize)
                        try Self.copy(
                            block: start, using: buffers.buffers[task], from: source, into: fd,
                            sourcePath: sourcePath, filePath: filePath, digest: name, size: size)
                    } else {
                        try hashing.hash(fd, from: from, to: hashEnd, path: filePath)
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
            }
            if let error = failure.withLock({ $0 }) { throw error }
            hashedUpTo = max(hashedUpTo, hashEnd)
            if reads == 0 { break }
            next += reads
        }
        if hashedUpTo < size { try hashing.hash(fd, from: hashedUpTo, to: size, path: filePath) }
        return Arrived(digest: digester.digest())
    }

    /// The lengths of the blocks read in the round starting at block `first`, their bytes taken
    /// from the budget: the first one waiting for them, the others while the budget gives them at
    /// once (none when every block was read: the round only hashes).
    private func takeRound(from first: Int, of blocks: Int, size: Int64, path: String) throws(BlobError) -> [Int] {
        guard first < blocks else { return [] }
        func length(_ block: Int) -> Int { Int(min(Int64(blockSize), size - Int64(block) * Int64(blockSize))) }
        guard budget.acquire(length(first), waitingAtMost: budgetWait) else {
            throw .io(operation: "fetch (no fetch memory within \(budgetWait))", path: path, errno: EIO)
        }
        var lengths = [length(first)]
        while lengths.count < parallelism, first + lengths.count < blocks, budget.acquireAhead(length(first + lengths.count)) {
            lengths.append(length(first + lengths.count))
        }
        return lengths
    }

    /// Reads one block (a single read of `length` bytes, as the reader promises: it fills the
    /// buffer unless the source ends) and writes it at the same offset of the file.
    private static func copy(
        block start: Int64, using buffer: UnsafeMutableRawBufferPointer, from source: any DriverFileReader, into fd: Int32,
        sourcePath: String, filePath: String, digest: Digest, size: Int64
    ) throws(BlobError) {
        let length = buffer.count
        var filled = 0
        while filled < length {
            let n = try driverCall { () throws(StorageDriverError) in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), at: start + Int64(filled))
            }
            if n == 0 { throw .truncated(digest, path: sourcePath, expected: size, actual: start + Int64(filled)) }
            filled += n
        }
        var written = 0
        while written < length {
            let n = pwrite(fd, buffer.baseAddress! + written, length - written, off_t(start) + off_t(written))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: filePath, errno: errno)
            }
            written += n
        }
    }
}

/// The in-order hash of a file being filled: one pass at a time (rounds never overlap), so its
/// state is only ever touched by one thread at once.
private final class HashCursor: @unchecked Sendable {
    let digester: Digester
    let buffer: UnsafeMutableRawBufferPointer

    init(digester: Digester, buffer: UnsafeMutableRawBufferPointer) {
        self.digester = digester
        self.buffer = buffer
    }

    /// Hashes bytes `from..<to` of `fd`, just written, so read back from the page cache.
    func hash(_ fd: Int32, from: Int64, to: Int64, path: String) throws(BlobError) {
        var position = from
        while position < to {
            let wanted = Int(min(Int64(buffer.count), to - position))
            let n = pread(fd, buffer.baseAddress!, wanted, off_t(position))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { throw .io(operation: "read", path: path, errno: EIO) }
            digester.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            position += Int64(n)
        }
    }
}

/// The block buffers of one round, each of its block's length: read number `i` uses buffer `i`
/// only, so no two threads touch one buffer at once. Made for the round and freed after it (each
/// is its own mapping, `BlobDataCache.returnLargeAllocations`), so that what the budget counts is
/// what exists.
private final class BlockBuffers: @unchecked Sendable {
    let buffers: [UnsafeMutableRawBufferPointer]

    init(_ lengths: [Int]) {
        buffers = lengths.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0, alignment: 16) }
    }

    func deallocate() {
        for buffer in buffers { buffer.deallocate() }
    }
}
