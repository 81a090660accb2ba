import Distribution
import Testing

@Suite struct DigestTests {
    static let hex256 = String(repeating: "ab", count: 32)

    @Test func parsesEachAlgorithmAtItsExactLength() throws {
        for algorithm in DigestAlgorithm.allCases {
            let hex = String(repeating: "0123456789abcdef", count: 8).prefix(algorithm.hexLength)
            let digest = try Digest(parsing: "\(algorithm.rawValue):\(hex)")
            #expect(digest.algorithm == algorithm)
            #expect(digest.hex == String(hex))
            #expect(digest.description == "\(algorithm.rawValue):\(hex)")
        }
    }

    static let malformed: [(String, DigestError)] = [
        ("", DigestError.invalidFormat("")),
        ("sha256", .invalidFormat("sha256")),
        ("sha256:", .invalidFormat("sha256:")),
        (":abc", .invalidFormat(":abc")),
        ("sha256:abc", .invalidLength("sha256:abc")),
        ("sha512:" + hex256, .invalidLength("sha512:" + hex256)),
        ("sha256:" + hex256.uppercased(), .invalidFormat("sha256:" + hex256.uppercased())),
        ("sha256:" + String(repeating: "g", count: 64), .invalidFormat("sha256:" + String(repeating: "g", count: 64))),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", .unsupportedAlgorithm("md5:d41d8cd98f00b204e9800998ecf8427e")),
        ("tarsum.v1+sha256:" + hex256, .unsupportedAlgorithm("tarsum.v1+sha256:" + hex256)),
        ("SHA256:" + hex256, .invalidFormat("SHA256:" + hex256)),
        ("sha256:../../etc/passwd", .invalidLength("sha256:../../etc/passwd")),
        ("sha256:" + hex256 + "\n", .invalidLength("sha256:" + hex256 + "\n")),
        ("bad alg:abc", .invalidFormat("bad alg:abc")),
    ]

    @Test(arguments: malformed)
    func refusesMalformedDigestsWithTheRightError(input: String, expected: DigestError) {
        #expect(throws: expected) { try Digest(parsing: input) }
    }

    @Test func digesterMatchesKnownVectors() {
        #expect(Digester.digest(of: []) == Digest.emptySHA256)
        #expect(
            Digester.digest(of: Array("abc".utf8)).description
                == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Digester.digest(of: Array("abc".utf8), algorithm: .sha384).description
                == "sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
        #expect(
            Digester.digest(of: Array("abc".utf8), algorithm: .sha512).description
                == "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
    }

    @Test func digesterStreamsAndCanBeReadMidway() {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let streaming = Digester()
        streaming.update(Array(bytes[..<1]))
        let midway = streaming.digest()
        #expect(midway == Digester.digest(of: Array(bytes[..<1])))
        streaming.update(Array(bytes[1..<4097]))
        streaming.update(Array(bytes[4097...]))
        #expect(streaming.digest() == Digester.digest(of: bytes))
        #expect(streaming.count == Int64(bytes.count))
    }
}
