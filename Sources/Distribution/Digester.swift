import CCrypto

/// A streaming hash over OpenSSL's EVP interface (SHA-256/384/512, hardware-accelerated).
/// Not thread-safe: it is `Sendable` only so that it can move between threads inside the
/// `Mutex` of its single owner (an upload, a verifying read).
public final class Digester: @unchecked Sendable {
    public let algorithm: DigestAlgorithm
    private let context: OpaquePointer
    /// Bytes hashed so far.
    public private(set) var count: Int64 = 0

    public init(_ algorithm: DigestAlgorithm = .canonical) {
        self.algorithm = algorithm
        guard let context = EVP_MD_CTX_new() else { fatalError("OpenSSL: EVP_MD_CTX_new failed (out of memory)") }
        self.context = context
        reset()
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Starts over, as if newly created.
    public func reset() {
        guard EVP_DigestInit_ex(context, Self.md(algorithm), nil) == 1 else {
            fatalError("OpenSSL: EVP_DigestInit_ex(\(algorithm)) failed")
        }
        count = 0
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, base, bytes.count) == 1 else { fatalError("OpenSSL: EVP_DigestUpdate failed") }
        count += Int64(bytes.count)
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything hashed so far; the digester can go on hashing afterwards.
    public func digest() -> Digest {
        guard let copy = EVP_MD_CTX_new() else { fatalError("OpenSSL: EVP_MD_CTX_new failed (out of memory)") }
        defer { EVP_MD_CTX_free(copy) }
        guard EVP_MD_CTX_copy_ex(copy, context) == 1 else { fatalError("OpenSSL: EVP_MD_CTX_copy_ex failed") }
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(copy, &output, &length) == 1, Int(length) == algorithm.byteCount else {
            fatalError("OpenSSL: EVP_DigestFinal_ex failed")
        }
        return Digest(algorithm: algorithm, bytes: output[..<Int(length)])
    }

    /// The digest of `bytes` in one call.
    public static func digest(of bytes: [UInt8], algorithm: DigestAlgorithm = .canonical) -> Digest {
        let digester = Digester(algorithm)
        digester.update(bytes)
        return digester.digest()
    }

    private static func md(_ algorithm: DigestAlgorithm) -> OpaquePointer? {
        switch algorithm {
        case .sha256: EVP_sha256()
        case .sha384: EVP_sha384()
        case .sha512: EVP_sha512()
        }
    }
}
