import Synchronization

/// Reusable read buffers: allocating one per read costs a page fault per 4 KiB (measured: half
/// the throughput), so buffers go back to the pool after each reply.
final class BufferPool: Sendable {
    /// A buffer owned by whoever took it from the pool.
    struct Buffer: @unchecked Sendable {
        let memory: UnsafeMutableRawBufferPointer
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

    /// Runs `body` with a buffer of at least `size` bytes.
    func withBuffer<T>(size: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        guard size <= bufferSize else {
            let oversized = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
            defer { oversized.deallocate() }
            return try body(oversized)
        }
        let buffer =
            free.withLock { $0.popLast() }
            ?? Buffer(memory: .allocate(byteCount: bufferSize, alignment: 4096))
        defer { free.withLock { $0.append(buffer) } }
        return try body(UnsafeMutableRawBufferPointer(rebasing: buffer.memory[..<size]))
    }
}
