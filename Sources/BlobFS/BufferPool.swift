import Synchronization

/// Reusable read buffers: allocating one per read costs a page fault per 4 KiB (measured: half
/// the throughput), so buffers go back to the pool after each reply.
final class BufferPool: Sendable {
    /// A buffer owned by whoever took it from the pool.
    struct Buffer: @unchecked Sendable {
        let memory: UnsafeMutableRawBufferPointer
        /// How much of `memory` the taker asked for.
        var size: Int

        /// The bytes asked for.
        var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: memory[..<size]) }
    }

    let bufferSize: Int
    private let free = Mutex<[Buffer]>([])

    init(bufferSize: Int) {
        self.bufferSize = bufferSize
    }

    deinit {
        free.withLock { buffers in
            for buffer in buffers { buffer.memory.deallocate() }
        }
    }

    /// A buffer of at least `size` bytes, whose first `size` bytes are `bytes`; hand it back with
    /// `give`. (Taken and given rather than lent to a closure, so that a request, which cannot be
    /// copied, can be answered with the bytes and consumed in the same scope.)
    func take(size: Int) -> Buffer {
        guard size <= bufferSize else {
            return Buffer(memory: .allocate(byteCount: size, alignment: 4096), size: size)
        }
        var buffer = free.withLock { $0.popLast() } ?? Buffer(memory: .allocate(byteCount: bufferSize, alignment: 4096), size: 0)
        buffer.size = size
        return buffer
    }

    /// Returns a buffer from `take` to the pool (an oversized one is freed).
    func give(_ buffer: Buffer) {
        guard buffer.memory.count == bufferSize else { return buffer.memory.deallocate() }
        free.withLock { $0.append(buffer) }
    }
}
