/// A validated content digest, `<algorithm>:<lowercase hex>`, as go-digest 1.0 accepts it.
public struct Digest: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let algorithm: DigestAlgorithm
    /// The lowercase hex part, exactly `algorithm.hexLength` characters.
    public let hex: String

    /// Parses and validates in go-digest's order: format, algorithm, length, then the hex itself.
    public init(parsing string: String) throws(DigestError) {
        let utf8 = Array(string.utf8)
        guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")), colon > 0, colon + 1 < utf8.count else {
            throw .invalidFormat(string)
        }
        let algorithmName = String(decoding: utf8[..<colon], as: UTF8.self)
        let encoded = utf8[(colon + 1)...]
        guard let algorithm = DigestAlgorithm(rawValue: algorithmName) else {
            // An unknown algorithm is "unsupported" only if the whole string is well formed.
            throw Digest.isWellFormed(algorithm: utf8[..<colon], encoded: encoded)
                ? .unsupportedAlgorithm(string) : .invalidFormat(string)
        }
        guard encoded.count == algorithm.hexLength else { throw .invalidLength(string) }
        guard encoded.allSatisfy(Digest.isLowerHex) else { throw .invalidFormat(string) }
        self.algorithm = algorithm
        self.hex = String(decoding: encoded, as: UTF8.self)
    }

    /// Builds a digest from raw hash bytes.
    public init(algorithm: DigestAlgorithm, bytes: some Collection<UInt8>) {
        precondition(bytes.count == algorithm.byteCount, "hash length does not match \(algorithm)")
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        self.algorithm = algorithm
        self.hex = String(decoding: hex, as: UTF8.self)
    }

    /// A digest from hex already known to be valid for `algorithm` (`RawDigest` turning back).
    init(algorithm: DigestAlgorithm, validatedHex hex: String) {
        self.algorithm = algorithm
        self.hex = hex
    }

    /// The digest of zero bytes, which the registry treats specially at commit.
    public static let emptySHA256 = try! Digest(
        parsing: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    public var description: String { "\(algorithm.rawValue):\(hex)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }

    private static func isLowerHex(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
    }

    /// go-digest's DigestRegexp: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
    private static func isWellFormed(algorithm: ArraySlice<UInt8>, encoded: ArraySlice<UInt8>) -> Bool {
        func isAlnum(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
        }
        var previousWasSeparator = true
        for c in algorithm {
            if isAlnum(c) {
                previousWasSeparator = false
            } else if "+._-".utf8.contains(c), !previousWasSeparator {
                previousWasSeparator = true
            } else {
                return false
            }
        }
        guard !previousWasSeparator else { return false }
        let isUpper = { (c: UInt8) in c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") }
        return encoded.allSatisfy { isAlnum($0) || isUpper($0) || "=_-".utf8.contains($0) }
    }
}
