import Dispatch
import Glibc
import StorageDriver
import Synchronization

/// Reads of a driver file too large for the blob cache, through a bounded window of blocks in
/// memory: fixed blocks of `blockSize` (each one read of exactly its range, one ranged GET on
/// S3), and while reads go forward block by block, the next `window - 1` blocks are fetched in
/// parallel ahead of them. A read elsewhere (a seek) into a block not here reads exactly its own
/// bytes from the driver (`readRange`: one small GET on S3) into the caller's buffer and keeps
/// nothing, so random small reads cost what they read; a read that then goes on from there is
/// sequential and starts the window. At most `window` blocks are kept (plus those still arriving
/// after a seek left them behind), so memory is bounded whatever the blob's size.
///
/// Every block's bytes come out of the process's `FetchMemoryBudget` before its GET and go back
/// when the last holder of the block lets it go (`Slot.deinit`): the block a read needs waits for
/// its bytes (up to `budgetWait`, then EIO), after this reader has dropped every other block it
/// holds; read-ahead blocks are fetched only as far as the budget allows without waiting, so
/// under pressure a stream falls back to one block at a time.
final class ReadAheadReader: DriverFileReader {
    private let base: any DriverFileReader
    private let size: Int64
    private let blockSize: Int
    private let window: Int
    private let path: String
    private let budget: FetchMemoryBudget
    private let budgetWait: Duration

    /// One block being fetched or fetched: readers that need it wait on `arrived`. Its bytes are
    /// charged to the budget until the slot is gone: out of the window and out of every read and
    /// fetch that held it.
    private final class Slot: Sendable {
        let arrived = DispatchGroup()
        let bytes = Mutex<Result<[UInt8], StorageDriverError>?>(nil)
        let budget: FetchMemoryBudget
        let charged: Int

        init(budget: FetchMemoryBudget, charged: Int) {
            self.budget = budget
            self.charged = charged
        }

        deinit { budget.release(charged) }
    }

    private struct State {
        var slots: [Int: Slot] = [:]
        /// The block the last read ended in: the next read in it or the one after is sequential
        /// (at first, a read from the start: what a reader of the whole blob begins with).
        var lastBlock = -1
    }

    /// Held to look slots up or add them, never across a fetch or a wait for the budget.
    private let state = Mutex(State())

    init(
        base: any DriverFileReader, size: Int64, blockSize: Int, window: Int, path: String, budget: FetchMemoryBudget,
        budgetWait: Duration
    ) {
        self.base = base
        self.size = size
        self.blockSize = blockSize
        self.window = max(window, 1)
        self.path = path
        self.budget = budget
        self.budgetWait = budgetWait
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        guard offset >= 0 else { throw .io(operation: "read", path: path, errno: EINVAL) }
        let wanted = Int(min(Int64(buffer.count), max(0, size - offset)))
        guard wanted > 0 else { return 0 }
        if takesSeek(from: offset, count: wanted) {
            // Measured on radosgw (`bash bench/s3.sh`, blobfs with a cache smaller than the blob):
            // 5,000 random 4 KiB reads of a 1 GiB blob fetched a 4 MiB block each, 65 s.
            var filled = 0
            while filled < wanted {
                let n = try base.readRange(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<wanted]), at: offset + Int64(filled))
                if n == 0 { break }
                filled += n
            }
            return filled
        }
        var filled = 0
        while filled < buffer.count, offset + Int64(filled) < size {
            let position = offset + Int64(filled)
            let block = Int(position / Int64(blockSize))
            let slot = try schedule(block)
            slot.arrived.wait()
            let bytes: [UInt8]
            switch slot.bytes.withLock({ $0 })! {
            case .success(let arrived): bytes = arrived
            case .failure(let error):
                // Forgotten, so that the next read asks again (the storage may be back).
                state.withLock { if $0.slots[block] === slot { $0.slots[block] = nil } }
                throw error
            }
            let within = Int(position - Int64(block) * Int64(blockSize))
            guard within < bytes.count else { break }  // the file ended early: a short read, as a file's
            let n = min(buffer.count - filled, bytes.count - within)
            bytes.withUnsafeBytes { source in
                (buffer.baseAddress! + filled).copyMemory(from: source.baseAddress! + within, byteCount: n)
            }
            filled += n
        }
        return filled
    }

    /// Whether a read of `count` bytes at `offset` is a seek served without the window: it starts
    /// neither in the block the last read ended in nor in the next one, and its block is not here.
    /// It then counts as where the reads are (the next read on from it is sequential).
    private func takesSeek(from offset: Int64, count: Int) -> Bool {
        let block = Int(offset / Int64(blockSize))
        return state.withLock { state in
            guard block != state.lastBlock, block != state.lastBlock + 1, state.slots[block] == nil else { return false }
            state.lastBlock = Int((offset + Int64(count) - 1) / Int64(blockSize))
            return true
        }
    }

    /// The length of `block` (the last one is shorter).
    private func length(of block: Int) -> Int {
        Int(min(Int64(blockSize), size - Int64(block) * Int64(blockSize)))
    }

    /// The slot of `block`, fetching it if it is not here (waiting for its bytes in the budget)
    /// and, on a forward run, as much of the window after it as the budget gives without
    /// waiting; slots outside the window are dropped.
    private func schedule(_ block: Int) throws(StorageDriverError) -> Slot {
        let blocks = Int((size + Int64(blockSize) - 1) / Int64(blockSize))
        let (present, sequential) = state.withLock { state -> (Slot?, Bool) in
            let sequential = block == state.lastBlock || block == state.lastBlock + 1
            state.lastBlock = block
            state.slots = state.slots.filter { $0.key >= block - 1 && $0.key < block + window }
            return (state.slots[block], sequential)
        }
        var started: [(Int, Slot)] = []
        let slot: Slot
        if let present {
            slot = present
        } else {
            let bytes = length(of: block)
            if !budget.acquireNow(bytes) {
                // Before waiting, give back what this reader holds and its read does not need:
                // a waiter holds no budget another waiter could be waiting for.
                state.withLock { $0.slots = [:] }
                guard budget.acquire(bytes, waitingAtMost: budgetWait) else {
                    throw .io(operation: "read (no fetch memory within \(budgetWait))", path: path, errno: EIO)
                }
            }
            let fresh = Slot(budget: budget, charged: bytes)
            slot = state.withLock { state in
                // A concurrent read of this handle may have started the block meanwhile: its slot
                // is used, and this one's bytes go back as it goes.
                if let other = state.slots[block] { return other }
                fresh.arrived.enter()
                state.slots[block] = fresh
                started.append((block, fresh))
                return fresh
            }
        }
        if sequential {
            for index in (block + 1)..<max(block + 1, min(block + window, blocks)) {
                let bytes = length(of: index)
                if state.withLock({ $0.slots[index] != nil }) { continue }
                // No bytes without waiting: fewer blocks ahead, not a wait.
                guard budget.acquireAhead(bytes) else { break }
                let ahead = Slot(budget: budget, charged: bytes)
                state.withLock { state in
                    guard state.slots[index] == nil else { return }
                    ahead.arrived.enter()
                    state.slots[index] = ahead
                    started.append((index, ahead))
                }
                // A block that lost the race to a concurrent read is dropped here: its bytes go back.
            }
        }
        for (index, slot) in started { fetch(index, into: slot) }
        return slot
    }

    private func fetch(_ block: Int, into slot: Slot) {
        FetchThreads.start { [base, blockSize, size] in
            let start = Int64(block) * Int64(blockSize)
            let length = Int(min(Int64(blockSize), size - start))
            // Fetched straight into the block's own bytes (the S3 reader has libcurl write there).
            var bytes = [UInt8](repeating: 0, count: length)
            let result = bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(StorageDriverError) -> Int in
                    var filled = 0
                    while filled < length {
                        let n = try base.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), at: start + Int64(filled))
                        if n == 0 { break }
                        filled += n
                    }
                    return filled
                }
            }
            slot.bytes.withLock { stored in
                stored = result.map { filled in
                    bytes.removeSubrange(filled...)
                    return bytes
                }
            }
            slot.arrived.leave()
        }
    }

    func currentSize() throws(StorageDriverError) -> Int64 { try base.currentSize() }
    func version() throws(StorageDriverError) -> FileVersion? { try base.version() }
}
