/// Why a string is not a digest; the three cases go-digest distinguishes (docs/storage-format.md,
/// Digests).
public enum DigestError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidFormat(String)
    case unsupportedAlgorithm(String)
    case invalidLength(String)

    public var description: String {
        switch self {
        case .invalidFormat(let s): "invalid checksum digest format: \(quoted(s))"
        case .unsupportedAlgorithm(let s): "unsupported digest algorithm: \(quoted(s))"
        case .invalidLength(let s): "invalid checksum digest length: \(quoted(s))"
        }
    }
}

/// Quotes user input for error messages, shortening it so a hostile string cannot flood a log.
func quoted(_ s: String) -> String {
    let limit = 160
    let shown = s.count > limit ? String(s.prefix(limit)) + "…" : s
    return "\"" + shown.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f ? String($0) : $0.escaped(asASCII: true) }.joined() + "\""
}
