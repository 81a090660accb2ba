import Distribution
import Synchronization

/// Hashes the reads of one open blob as they come, so that a whole-blob read from offset 0 to
/// the end is checked against the blob's digest. Reads may arrive slightly out of order (the
/// kernel's readahead is asynchronous and libfuse has several threads): a small gap ahead of the
/// hashed prefix is filled from the file; a large one (random access) ends verification for
/// this handle.
final class ReadVerifier: Sendable {
    /// The largest gap filled from the file rather than giving up.
    static let maximumGap: Int64 = 8 << 20

    /// How a read ended verification.
    enum Verdict: Sendable {
        case pending
        case verified
        case mismatch(actual: Digest)
        case abandoned
    }

    private struct State {
        var digester: Digester? = Digester(.sha256)
        var hashedUpTo: Int64 = 0
    }

    let descriptor: Descriptor
    private let state = Mutex(State())

    init(descriptor: Descriptor) {
        self.descriptor = descriptor
    }

    /// Accounts for `chunk`, read at `offset`; `fill` reads a gap from the file.
    func observe(
        _ chunk: UnsafeRawBufferPointer, at offset: Int64,
        fill: (UnsafeMutableRawBufferPointer, Int64) throws -> Int
    ) throws -> Verdict {
        try state.withLock { state in
            guard let digester = state.digester else { return .abandoned }
            if offset > state.hashedUpTo {
                guard offset - state.hashedUpTo <= Self.maximumGap else {
                    state.digester = nil
                    return .abandoned
                }
                let gap = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(offset - state.hashedUpTo), alignment: 16)
                defer { gap.deallocate() }
                var filled = 0
                while filled < gap.count {
                    let n = try fill(UnsafeMutableRawBufferPointer(rebasing: gap[filled...]), state.hashedUpTo + Int64(filled))
                    guard n > 0 else { break }
                    filled += n
                }
                digester.update(UnsafeRawBufferPointer(rebasing: gap[..<filled]))
                state.hashedUpTo += Int64(filled)
                guard state.hashedUpTo == offset else {
                    state.digester = nil
                    return .abandoned
                }
            }
            let end = offset + Int64(chunk.count)
            if end > state.hashedUpTo {
                let skip = Int(state.hashedUpTo - offset)
                digester.update(UnsafeRawBufferPointer(rebasing: chunk[skip...]))
                state.hashedUpTo = end
            }
            guard state.hashedUpTo >= descriptor.size else { return .pending }
            state.digester = nil
            let actual = digester.digest()
            return actual == descriptor.digest ? .verified : .mismatch(actual: actual)
        }
    }
}
