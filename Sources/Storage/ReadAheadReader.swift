import Dispatch
import Glibc
import StorageDriver
import Synchronization

/// Reads of a driver file too large for the blob cache, through a bounded window of blocks in
/// memory: fixed blocks of `blockSize` (each one read of exactly its range, one ranged GET on
/// S3), and while reads go forward block by block, the next `window - 1` blocks are fetched in
/// parallel ahead of them. A read elsewhere (a seek) fetches only its own block, so random small
/// reads cost one block each and no read-ahead. At most `window` blocks are kept (plus those
/// still arriving after a seek left them behind), so memory is bounded whatever the blob's size.
final class ReadAheadReader: DriverFileReader {
    private let base: any DriverFileReader
    private let size: Int64
    private let blockSize: Int
    private let window: Int
    private let path: String

    /// One block being fetched or fetched: readers that need it wait on `arrived`.
    private final class Slot: Sendable {
        let arrived = DispatchGroup()
        let bytes = Mutex<Result<[UInt8], StorageDriverError>?>(nil)
    }

    private struct State {
        var slots: [Int: Slot] = [:]
        /// The block the last read ended in: the next read in it or the one after is sequential.
        var lastBlock = -2
    }

    /// Held to look slots up or add them, never across a fetch.
    private let state = Mutex(State())

    init(base: any DriverFileReader, size: Int64, blockSize: Int, window: Int, path: String) {
        self.base = base
        self.size = size
        self.blockSize = blockSize
        self.window = max(window, 1)
        self.path = path
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        guard offset >= 0 else { throw .io(operation: "read", path: path, errno: EINVAL) }
        var filled = 0
        while filled < buffer.count, offset + Int64(filled) < size {
            let position = offset + Int64(filled)
            let block = Int(position / Int64(blockSize))
            let slot = schedule(block)
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

    /// The slot of `block`, fetching it (and, on a forward run, the window after it) if it is
    /// not here; slots outside the window are dropped.
    private func schedule(_ block: Int) -> Slot {
        let blocks = Int((size + Int64(blockSize) - 1) / Int64(blockSize))
        var started: [(Int, Slot)] = []
        let slot = state.withLock { state -> Slot in
            let sequential = block == state.lastBlock || block == state.lastBlock + 1
            state.lastBlock = block
            let ahead = sequential ? window : 1
            for index in block..<min(block + ahead, blocks) where state.slots[index] == nil {
                let slot = Slot()
                slot.arrived.enter()
                state.slots[index] = slot
                started.append((index, slot))
            }
            let slot = state.slots[block]!
            state.slots = state.slots.filter { $0.key >= block - 1 && $0.key < block + window }
            return slot
        }
        for (index, slot) in started { fetch(index, into: slot) }
        return slot
    }

    private func fetch(_ block: Int, into slot: Slot) {
        FetchThreads.start { [base, blockSize, size] in
            let start = Int64(block) * Int64(blockSize)
            let length = Int(min(Int64(blockSize), size - start))
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
