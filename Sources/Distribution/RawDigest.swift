/// A digest as its raw hash bytes: 40 bytes inline and no allocation for sha256, for tables that
/// hold one per blob (a `Digest` keeps 64 hex characters on the heap, about 110 bytes more).
public struct RawDigest: Sendable, Hashable {
    // The first 32 hash bytes as big-endian words: all of a sha256.
    private var w0: UInt64
    private var w1: UInt64
    private var w2: UInt64
    private var w3: UInt64
    // The words past the first 32 bytes: none for sha256 (an empty array allocates nothing),
    // 2 for sha384, 4 for sha512. Its length also tells the algorithm, so no tag is stored.
    private var rest: [UInt64]

    public init(_ digest: Digest) {
        var hex = digest.hex
        (w0, w1, w2, w3, rest) = hex.withUTF8 { utf8 in
            // Digest guarantees lowercase hex of exactly the algorithm's length.
            func word(_ i: Int) -> UInt64 {
                var value: UInt64 = 0
                for c in utf8[(i * 16)..<(i * 16 + 16)] {
                    value = value << 4 | UInt64(c <= UInt8(ascii: "9") ? c &- UInt8(ascii: "0") : c &- UInt8(ascii: "a") &+ 10)
                }
                return value
            }
            let words = utf8.count / 16
            return (word(0), word(1), word(2), word(3), words > 4 ? (4..<words).map(word) : [])
        }
    }

    public var algorithm: DigestAlgorithm {
        switch rest.count {
        case 0: .sha256
        case 2: .sha384
        default: .sha512
        }
    }

    /// The digest again, with its hex text (one allocation).
    public var digest: Digest {
        let count = 4 + rest.count
        let hex = String(unsafeUninitializedCapacity: count * 16) { buffer in
            for i in 0..<count {
                let word = word(i)
                for j in 0..<16 {
                    let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * j)) & 0xf
                    buffer[i * 16 + j] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                }
            }
            return count * 16
        }
        return Digest(algorithm: algorithm, validatedHex: hex)
    }

    private func word(_ i: Int) -> UInt64 {
        switch i {
        case 0: w0
        case 1: w1
        case 2: w2
        case 3: w3
        default: rest[i - 4]
        }
    }
}
