import Distribution
import Testing

@Suite struct RawDigestTests {
    @Test(arguments: DigestAlgorithm.allCases)
    func roundTripsEachAlgorithm(algorithm: DigestAlgorithm) throws {
        // Every hex digit in every position, and a digest of all zeros and all ones.
        let patterns = [
            String(repeating: "0123456789abcdef", count: 8), String(repeating: "fedcba9876543210", count: 8),
            String(repeating: "0", count: 128), String(repeating: "f", count: 128),
        ]
        for pattern in patterns {
            let digest = try Digest(parsing: "\(algorithm.rawValue):\(pattern.prefix(algorithm.hexLength))")
            let raw = RawDigest(digest)
            #expect(raw.algorithm == algorithm)
            #expect(raw.digest == digest)
            #expect(raw.digest.description == digest.description)
        }
    }

    @Test func equalityAndHashFollowTheDigest() throws {
        let a = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        let b = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 31) + "ac")
        // Same leading 32 bytes, other algorithms: never equal to the sha256.
        let c = try Digest(parsing: "sha512:" + String(repeating: "ab", count: 64))
        #expect(RawDigest(a) == RawDigest(a))
        #expect(RawDigest(a).hashValue == RawDigest(a).hashValue)
        #expect(RawDigest(a) != RawDigest(b))
        #expect(RawDigest(a) != RawDigest(c))
        #expect(Set([RawDigest(a), RawDigest(b), RawDigest(c), RawDigest(a)]).count == 3)
    }

    @Test func isSmallForSHA256() {
        #expect(MemoryLayout<RawDigest>.size == 40)
    }
}
