@testable import BlobFS
import Distribution
import Glibc
import Testing

/// The naming rule of read-write mounts on its own (no kernel, no mount): which names in `blobs/`
/// can become a blob, which are rsync's temporary names, and why the others are refused.
@Suite struct UploadNameTests {
    static let hex = "9d31a4584adc12290ae8b06efeaafeaf2219cc60c806e5f54b4b5c60b53f8729"
    static let sha256 = try! Digest(parsing: "sha256:\(hex)")
    static let sha512 = Digester.digest(of: Array("x".utf8), algorithm: .sha512)
    static let sha384 = Digester.digest(of: Array("x".utf8), algorithm: .sha384)

    @Test func digestNamesAreDigests() {
        for digest in [Self.sha256, Self.sha384, Self.sha512, Digest.emptySHA256] {
            #expect(UploadName.classify(digest.description) == .digest(digest))
        }
    }

    /// What `rsync -a` names its file while it writes: `.` + the name + `.` + mkstemp's six
    /// letters and digits.
    @Test(arguments: ["AbC123", "RuzYkR", "000000", "zzzzzz", "XXXXXX"])
    func rsyncsTemporaryNamesForADigestAreTemporary(_ suffix: String) {
        for digest in [Self.sha256, Self.sha384, Self.sha512] {
            #expect(UploadName.classify(".\(digest).\(suffix)") == .temporary, ".\(digest).\(suffix)")
        }
    }

    /// The mistakes of F6: a bare hex name (copied out of `blobs/sha256/xx/<hex>/data`), a dash
    /// instead of the colon, a file name; each refused with a suggestion where there is one.
    @Test func namesThatAreNotDigestsAreRefusedWithASuggestion() {
        let cases: [(String, Digest?)] = [
            (Self.hex, Self.sha256),
            (Self.hex.uppercased(), Self.sha256),
            ("sha256-\(Self.hex)", Self.sha256),
            ("sha256_\(Self.hex)", Self.sha256),
            (Self.sha512.hex, Self.sha512),
            ("sha512-\(Self.sha512.hex)", Self.sha512),
            ("layer.tar.gz", nil),
            ("data", nil),
            ("\(Self.hex)0", nil),
            ("sha256-\(Self.hex.dropLast())", nil),
        ]
        for (name, suggestion) in cases {
            guard case .refused(let refusal) = UploadName.classify(name) else {
                Issue.record("\(name) was accepted: \(UploadName.classify(name))")
                continue
            }
            #expect(refusal == .notADigest(name: name, suggestion: suggestion), "\(name)")
            #expect(refusal.description.contains(UploadName.Refusal.accepted), "\(refusal)")
            if let suggestion { #expect(refusal.description.contains("did you mean \(suggestion)?"), "\(refusal)") }
            #expect(errnoValue(for: .refusedName(refusal, operation: "create")) == EINVAL)
        }
    }

    /// Names with a colon that are not digests keep go-digest's reason (as before the rule).
    @Test func namesShapedLikeDigestsSayWhatIsWrongWithThem() {
        let cases: [(String, DigestError)] = [
            ("sha256:xyz", .invalidLength("sha256:xyz")),
            ("sha256:\(Self.hex.uppercased())", .invalidFormat("sha256:\(Self.hex.uppercased())")),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", .unsupportedAlgorithm("md5:d41d8cd98f00b204e9800998ecf8427e")),
            ("sha256:", .invalidFormat("sha256:")),
            (":\(Self.hex)", .invalidFormat(":\(Self.hex)")),
        ]
        for (name, error) in cases {
            #expect(UploadName.classify(name) == .refused(.invalidDigest(name: name, error)), "\(name)")
        }
    }

    /// Leading-dot names that are not rsync's temporary name for a digest: a temporary name for
    /// a mis-named file (rsync of a tree with bare hex names is refused at its mkstemp, before it
    /// sends the data), a suffix of the wrong length or alphabet, editors' and other tools' names.
    @Test func otherHiddenNamesAreRefused() {
        let forNoDigest = [".\(Self.hex).AbC123", ".layer.tar.gz.AbC123", ".sha256:partial.AbC123", ".sha256-\(Self.hex).qwErty"]
        for name in forNoDigest {
            guard case .refused(.temporaryNameOfNoDigest(name: name, _)) = UploadName.classify(name) else {
                Issue.record("\(name): \(UploadName.classify(name))")
                continue
            }
        }
        if case .refused(let refusal) = UploadName.classify(".\(Self.hex).AbC123") {
            #expect(refusal.description.contains("did you mean \(Self.sha256)?"), "\(refusal)")
        }
        let malformed = [
            ".", "..", ".x", ".AbC123", "..AbC123", ".\(Self.sha256).AbC12", ".\(Self.sha256).AbC1234", ".\(Self.sha256).AbC-12",
            ".\(Self.sha256)", ".\(Self.sha256).", ".\(Self.sha256)~", "\(Self.sha256)~", "\(Self.sha256).~1~", ".\(Self.sha256).swp",
        ]
        for name in malformed {
            guard case .refused(let refusal) = UploadName.classify(name) else {
                Issue.record("\(name) was accepted: \(UploadName.classify(name))")
                continue
            }
            #expect(errnoValue(for: .refusedName(refusal, operation: "create")) == EINVAL, "\(name)")
        }
        // cp --backup's names (`<digest>~`, `<digest>.~1~`) are refused too, as too long for a
        // digest (cp makes them by renaming the existing blob, which is EPERM anyway).
        for name in ["\(Self.sha256)~", "\(Self.sha256).~1~"] {
            #expect(UploadName.classify(name) == .refused(.invalidDigest(name: name, .invalidLength(name))), "\(name)")
        }
    }

    /// A hostile name cannot break the log line: quotes and control characters are escaped.
    @Test func theReasonEscapesTheName() {
        guard case .refused(let refusal) = UploadName.classify("a\nb\"c") else {
            Issue.record("accepted")
            return
        }
        #expect(!refusal.description.contains("\n") && refusal.description.contains(#""a\nb\"c""#), "\(refusal)")
    }
}
