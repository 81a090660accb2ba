/// The inode slots, in fixed-size chunks: growing adds a chunk instead of copying the whole table
/// into one twice its size, which would briefly need three times the memory at the peak.
struct SlotArray {
    private static let chunkShift = 10  // 1,024 slots, 72 KiB: below glibc's mmap threshold
    private static let chunkSize = 1 << chunkShift
    private var chunks: [[InodeSlot]] = []
    private(set) var count = 0

    subscript(index: UInt32) -> InodeSlot {
        get { chunks[Int(index) >> Self.chunkShift][Int(index) & (Self.chunkSize - 1)] }
        _modify { yield &chunks[Int(index) >> Self.chunkShift][Int(index) & (Self.chunkSize - 1)] }
    }

    /// Appends a slot and returns its index.
    mutating func append(_ slot: InodeSlot) -> UInt32 {
        if count & (Self.chunkSize - 1) == 0 {
            var chunk: [InodeSlot] = []
            chunk.reserveCapacity(Self.chunkSize)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(slot)
        count += 1
        return UInt32(count - 1)
    }
}
