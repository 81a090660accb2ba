import Distribution

/// A validated tag name, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
public struct Tag: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) throws(BlobError) {
        let bytes = Array(value.utf8)
        func isWord(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
        }
        guard let first = bytes.first, isWord(first), bytes.count <= 128,
            bytes.allSatisfy({ isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { throw .unsupported("invalid tag \(value.debugDescription)") }
        self.value = value
    }

    public var description: String { value }
}
