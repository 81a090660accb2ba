import Distribution

/// An upload id: a canonical UUID (`8-4-4-4-12` hex), the only shape the registry's upload
/// purging recognises (docs/storage-format.md, Uploads). New ids are random version-4 UUIDs in
/// lowercase.
public struct UploadID: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) throws(BlobError) {
        guard Self.isUUID(value) else { throw .uploadUnknown(value) }
        self.value = value
    }

    private init(unchecked value: String) { self.value = value }

    /// A new random version-4 UUID.
    public static func random() -> UploadID {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80  // RFC 4122 variant
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        for (i, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(i) { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0f)])
        }
        return UploadID(unchecked: String(decoding: text, as: UTF8.self))
    }

    static func isUUID(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count == 36 else { return false }
        for (i, c) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                guard c == UInt8(ascii: "-") else { return false }
            } else {
                let isHex =
                    (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
                    || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
                guard isHex else { return false }
            }
        }
        return true
    }

    public var description: String { value }
}
