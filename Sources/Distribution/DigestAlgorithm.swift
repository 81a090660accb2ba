/// A digest algorithm the registry accepts: sha256 is canonical, sha384/sha512 are aliases.
public enum DigestAlgorithm: String, Sendable, CaseIterable, Hashable {
    case sha256
    case sha384
    case sha512

    /// The algorithm every blob is stored under.
    public static let canonical = DigestAlgorithm.sha256

    /// Length of the hash in bytes.
    public var byteCount: Int {
        switch self {
        case .sha256: 32
        case .sha384: 48
        case .sha512: 64
        }
    }

    /// Length of the lowercase hex encoding, as go-digest checks it.
    public var hexLength: Int { byteCount * 2 }
}
