import Dispatch
import Distribution
import Glibc
import StorageDriver
import Synchronization

/// One blob's data brought from the driver into a local file with parallel ranged reads, and
/// hashed in order as it arrives. The data is cut into fixed blocks (`blockSize(for:)`, from
/// 4 MiB for a blob of 64 MiB to 32 MiB for one of 1 GiB; the last one shorter); `parallelism` copiers each take the next block not yet taken and copy it into the
/// file at its offset (`DriverFileReader.copy`: the S3 reader makes it one ranged GET whose body
/// libcurl hands over piece by piece, each piece written into the file while it is still in the
/// CPU's cache), so a slow block holds up no copier but itself: a sliding window, not rounds. The
/// caller's thread hashes behind them, from the page cache, as far as the blocks copied so far
/// reach without a gap.
///
/// No block is held in memory: a copy's memory is libcurl's receive buffer (the default copy's
/// 1 MiB buffer for other drivers), whatever the blob's size. Measured on radosgw here: with
/// 4 MiB block buffers per round written by pwrite (about 5 s of daemon CPU per GiB, half of it
/// copying cold buffers into fresh page cache) against this: docs/benchmarks.md, issue 14.
struct BlobFetch {
    /// The smallest block; a block is `blockSize(for:)`.
    let blockSize: Int
    let parallelism: Int
    /// The largest block, for large blobs.
    let largestBlockSize: Int

    init(blockSize: Int, parallelism: Int, largestBlockSize: Int = 32 << 20) {
        self.blockSize = blockSize
        self.parallelism = parallelism
        self.largestBlockSize = max(largestBlockSize, blockSize)
    }

    /// The block for a blob of `size`: about a quarter of what each copier would take in equal
    /// shares (so the window stays full to near the end and a last slow block is short), a
    /// multiple of `blockSize`, at most `largestBlockSize`. Fewer, larger GETs cost the server
    /// and the daemon less: for 1 GiB on radosgw here, 32 MiB blocks took 2.26 s against 2.66–2.86 s
    /// with 4 MiB ones, daemon CPU 1.7 s against 2.0 s, the server's 1.85 s against 2.5 s.
    func blockSize(for size: Int64) -> Int {
        let share = size / Int64(4 * parallelism)
        let blocks = max(1, (share + Int64(blockSize) - 1) / Int64(blockSize))
        return Int(min(Int64(largestBlockSize), blocks * Int64(blockSize)))
    }

    /// The file the data went into was filled and hashed; `digest` is what it hashes to.
    struct Arrived {
        var digest: Digest
    }

    /// Fills `fd` (an empty file) with `size` bytes of `source` and hashes them with
    /// `algorithm`. A source that ends early is `truncated`; any read failure is thrown as is,
    /// after every copy in flight has ended.
    func fill(
        _ fd: Int32, from source: any DriverFileReader, size: Int64, digest name: Digest, sourcePath: String, filePath: String
    ) throws(BlobError) -> Arrived {
        let digester = Digester(name.algorithm)
        let blockSize = blockSize(for: size)
        let blocks = Int((size + Int64(blockSize) - 1) / Int64(blockSize))
        let progress = FetchProgress(blocks: blocks)
        let copiers = min(parallelism, blocks)
        FetchThreads.run(copiers + 1) { task in
            if task < copiers {
                while let block = progress.take() {
                    let start = Int64(block) * Int64(blockSize)
                    let length = Int(min(Int64(blockSize), size - start))
                    do throws(BlobError) {
                        let copied = try driverCall { () throws(StorageDriverError) in
                            try source.copy(at: start, count: length, intoFile: fd, localPath: filePath)
                        }
                        guard copied == length else {
                            throw .truncated(name, path: sourcePath, expected: size, actual: start + Int64(copied))
                        }
                        // Written back while the next blocks arrive: the fsync before the blob is
                        // published then waits for the last few only (0.8 s for 1 GiB without).
                        LocalWrite.startWriteback(fd, offset: start, length: length)
                        progress.copied(block)
                    } catch {
                        progress.fail(error)
                    }
                }
            } else {
                Self.hashBehind(progress, fd: fd, size: size, blockSize: blockSize, digester: digester, path: filePath)
            }
        }
        if let failure = progress.failure { throw failure }
        return Arrived(digest: digester.digest())
    }

    /// The hashing side: waits for the copied blocks to reach past what it hashed, hashes up to
    /// there from the file (read back from the page cache), until the whole size is hashed or the
    /// fetch failed.
    private static func hashBehind(
        _ progress: FetchProgress, fd: Int32, size: Int64, blockSize: Int, digester: Digester, path: String
    ) {
        // Small enough that what pread copies in is still in the CPU's cache when it is hashed.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 << 10, alignment: 16)
        defer { buffer.deallocate() }
        var position: Int64 = 0
        while position < size {
            guard let copiedBlocks = progress.waitForBlocks(beyond: Int(position / Int64(blockSize))) else { return }
            let end = min(Int64(copiedBlocks) * Int64(blockSize), size)
            while position < end {
                let wanted = Int(min(Int64(buffer.count), end - position))
                let n = pread(fd, buffer.baseAddress!, wanted, off_t(position))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    progress.fail(.io(operation: "read", path: path, errno: n < 0 ? errno : EIO))
                    return
                }
                digester.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                position += Int64(n)
            }
        }
    }
}

/// What the copiers of one fetch share with its hasher: which block is next to take, which are
/// copied, how far they reach without a gap, and the first failure (after which no block is
/// taken and the hasher stops). `arrivals` is signalled once per copied block and once per
/// failure, so the hasher sleeps only while nothing it waits for has happened; every wait ends
/// because every copy ends (the driver's requests have deadlines).
private final class FetchProgress: Sendable {
    private struct State {
        var next = 0
        var copied: [Bool]
        /// Blocks `0..<contiguous` are all copied.
        var contiguous = 0
        var failure: BlobError?
    }

    private let state: Mutex<State>
    private let arrivals = DispatchSemaphore(value: 0)

    init(blocks: Int) {
        state = Mutex(State(copied: Array(repeating: false, count: blocks)))
    }

    /// The next block to copy; nil when every block is taken or the fetch failed.
    func take() -> Int? {
        state.withLock { state in
            guard state.failure == nil, state.next < state.copied.count else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    func copied(_ block: Int) {
        state.withLock { state in
            state.copied[block] = true
            while state.contiguous < state.copied.count && state.copied[state.contiguous] { state.contiguous += 1 }
        }
        arrivals.signal()
    }

    /// Keeps the first failure; later ones are its consequences.
    func fail(_ error: BlobError) {
        state.withLock { $0.failure = $0.failure ?? error }
        arrivals.signal()
    }

    var failure: BlobError? { state.withLock { $0.failure } }

    /// Waits until more than `hashed` blocks are copied without a gap and says how many are; nil
    /// once the fetch failed.
    func waitForBlocks(beyond hashed: Int) -> Int? {
        while true {
            let (contiguous, failed) = state.withLock { ($0.contiguous, $0.failure != nil) }
            if failed { return nil }
            if contiguous > hashed { return contiguous }
            arrivals.wait()
        }
    }
}
