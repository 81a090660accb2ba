import Distribution
import Storage

/// What a name given to a new file in a repository's `blobs/` is (create, mknod, open with
/// O_CREAT, and the new name of a rename). Only two kinds of name can ever become a blob: a
/// digest, committed when its writer closes it, and the temporary name of a tool that writes
/// under one and renames onto the digest at the end. Anything else could only be thrown away at
/// unmount, so it is refused at once (EINVAL, one log line) instead of being accepted in silence.
///
/// The temporary names accepted are the ones our restore tools really use, measured with
/// `strace -f -e trace=openat,rename,renameat2,linkat,mknodat` into a plain directory
/// (GNU coreutils 9.1, GNU tar 1.34, rsync 3.5.0; docs/architecture.md has the table):
/// - `cp`, `cp -a`, `cp --backup`: create the final name (O_CREAT|O_EXCL), or open an existing
///   one with O_TRUNC; never a temporary name. `--backup` first renames the existing file to
///   `<name>~` (or `<name>.~1~`), a rename of a blob, which is EPERM here.
/// - `tar -x`: creates the final name (O_CREAT|O_EXCL); when it exists, unlinks it and creates
///   it again. `tar -x --overwrite` opens the existing name with O_TRUNC. No temporary names.
/// - `rsync -a`, `--partial`, `--partial-dir=DIR` (an uninterrupted run): `.<name>.XXXXXX`
///   (mkstemp's six letters and digits), O_CREAT|O_EXCL, then rename onto `<name>`; unlink of
///   the temporary file when the transfer fails.
/// - `rsync -a --inplace`: creates or opens the final name itself (O_WRONLY|O_CREAT).
/// - `rsync --temp-dir=DIR`: `<name>.XXXXXX` inside DIR, then a rename to the destination;
///   across filesystems that rename is EXDEV and rsync copies into the final name instead.
/// - `rsync --delay-updates` renames through a `.~tmp~` directory, which `blobs/` cannot hold:
///   not supported (rsync discards the file and, alas, still exits 0).
enum UploadName: Equatable, Sendable {
    /// `<algorithm>:<hex>`: an upload committed at close, or the target of a rename.
    case digest(Digest)
    /// rsync's `.<digest>.XXXXXX`: an upload, committed by a rename onto the digest.
    case temporary
    case refused(Refusal)

    /// `classify`, for a new file in a repository's `manifests/`: the digest must be sha256.
    static func classifyManifest(_ name: String) -> UploadName {
        switch classify(name) {
        case .digest(let digest) where digest.algorithm != .sha256: .refused(.manifestNotSHA256(name: name))
        case let other: other
        }
    }

    static func classify(_ name: String) -> UploadName {
        if let digest = try? Digest(parsing: name) { return .digest(digest) }
        if name.hasPrefix(".") { return classifyTemporary(name) }
        // Something that tries to be a digest and is not one: say what is wrong with it.
        if name.contains(":") {
            do { _ = try Digest(parsing: name) } catch { return .refused(.invalidDigest(name: name, error)) }
        }
        return .refused(.notADigest(name: name, suggestion: suggestedDigest(for: name)))
    }

    /// The length of mkstemp's random part, which rsync puts after the last dot.
    static let temporarySuffixLength = 6

    private static func classifyTemporary(_ name: String) -> UploadName {
        let utf8 = Array(name.utf8)
        let suffix = utf8.suffix(temporarySuffixLength + 1)
        guard utf8.count > temporarySuffixLength + 2, suffix.first == UInt8(ascii: "."), suffix.dropFirst().allSatisfy(isAlphanumeric)
        else {
            return .refused(.notATemporaryName(name: name))
        }
        let inner = String(decoding: utf8[1..<(utf8.count - temporarySuffixLength - 1)], as: UTF8.self)
        guard (try? Digest(parsing: inner)) != nil else { return .refused(.temporaryNameOfNoDigest(name: name, target: inner)) }
        return .temporary
    }

    /// The digest a mistaken name probably meant: bare hex of a digest's length
    /// (`<hex>` copied out of `blobs/sha256/xx/<hex>/data`), or `sha256-<hex>` / `sha256_<hex>`.
    static func suggestedDigest(for name: String) -> Digest? {
        let lowered = name.lowercased()
        for algorithm in DigestAlgorithm.allCases {
            for candidate in [lowered, dropping(prefix: algorithm.rawValue + "-", from: lowered), dropping(prefix: algorithm.rawValue + "_", from: lowered)] {
                guard let candidate, candidate.utf8.count == algorithm.hexLength else { continue }
                if let digest = try? Digest(parsing: "\(algorithm.rawValue):\(candidate)") { return digest }
            }
        }
        return nil
    }

    private static func dropping(prefix: String, from name: String) -> String? {
        name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : nil
    }

    static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    /// Why a name cannot be a file in `blobs/`; `errnoValue` makes it EINVAL. Its description is
    /// the whole log line's reason, ending with the names that are accepted.
    enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        /// Has a digest's shape (a colon) but is not one: uppercase hex, a wrong length, md5.
        case invalidDigest(name: String, DigestError)
        /// Neither a digest nor a temporary name; `suggestion` when it looks like a mistyped digest.
        case notADigest(name: String, suggestion: Digest?)
        /// Starts with a dot but is not `.<digest>.XXXXXX`.
        case notATemporaryName(name: String)
        /// rsync's temporary name for `target`, which is not a digest (rsync of a mis-named tree).
        case temporaryNameOfNoDigest(name: String, target: String)
        /// A digest of another algorithm than sha256 in `manifests/`: the registry stores
        /// manifests under sha256 only.
        case manifestNotSHA256(name: String)
        /// A symbolic link or a file in `tags/` whose name is not a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
        case notATag(name: String)
        /// A symbolic link in `tags/` that does not point at a manifest beside it.
        case notAManifestTarget(name: String, target: String)

        static let accepted =
            "blobs/ accepts only digest names (sha256:<64 hex>, sha384:<96 hex>, sha512:<128 hex>, lowercase) "
            + "and rsync's temporary names for them (.<digest>.XXXXXX)"

        var name: String {
            switch self {
            case .invalidDigest(let name, _), .notADigest(let name, _), .notATemporaryName(let name),
                .temporaryNameOfNoDigest(let name, _), .manifestNotSHA256(let name), .notATag(let name), .notAManifestTarget(let name, _):
                name
            }
        }

        var description: String {
            let reason =
                switch self {
                case .invalidDigest(_, let error): "\(error)"
                case .notADigest(let name, let suggestion?): "\(name.debugDescription) is not a digest (did you mean \(suggestion)?)"
                case .notADigest(let name, nil): "\(name.debugDescription) is not a digest"
                case .notATemporaryName(let name): "\(name.debugDescription) is neither a digest nor rsync's temporary name for one"
                case .temporaryNameOfNoDigest(let name, let target):
                    "\(name.debugDescription) is a temporary name for \(target.debugDescription), which is not a digest"
                        + (UploadName.suggestedDigest(for: target).map { " (did you mean \($0)?)" } ?? "")
                case .manifestNotSHA256(let name):
                    "\(name.debugDescription) is not a sha256 digest: the registry stores manifests under sha256 only"
                case .notATag(let name):
                    "\(name.debugDescription) is not a tag (letters, digits and _, then also . and -, at most 128)"
                case .notAManifestTarget(let name, let target):
                    "the tag \(name.debugDescription) points at \(target.debugDescription), not at a manifest"
                }
            switch self {
            case .manifestNotSHA256:
                return "\(reason); manifests/ accepts only sha256:<64 hex> names and rsync's temporary names for them"
            case .notATag, .notAManifestTarget:
                return "\(reason); tags/ accepts symbolic links <tag> -> ../manifests/sha256:<64 hex>, and files named <tag> "
                    + "(or rsync's .<tag>.XXXXXX) holding sha256:<64 hex> or a manifest's bytes"
            default:
                break
            }
            return "\(reason); \(Self.accepted)"
        }
    }
}

/// What a name given to a new regular file in a repository's `tags/` is (create, mknod, and the
/// new name of a rename). A tag is a symbolic link there, but copies that drop or follow links
/// write it as a file (`TagFileContent`): under the tag's own name (`cp -L`, `tar -h`, and GNU
/// tar's empty placeholder), or under rsync's temporary name `.<tag>.XXXXXX`, renamed onto the tag
/// at the end (`rsync -L`, and rsync without `-l` of a tree whose tags are files). A tag cannot
/// start with a dot, so a dotted name is always a temporary one.
enum TagFileName: Equatable, Sendable {
    /// The tag's own name: decided at close.
    case tag(Tag)
    /// rsync's `.<tag>.XXXXXX`: decided at its rename onto the tag.
    case temporary
    case refused(UploadName.Refusal)

    static func classify(_ name: String) -> TagFileName {
        if let tag = try? Tag(name) { return .tag(tag) }
        let utf8 = Array(name.utf8)
        let suffixLength = UploadName.temporarySuffixLength
        if name.hasPrefix("."), utf8.count > suffixLength + 2, utf8[utf8.count - suffixLength - 1] == UInt8(ascii: "."),
            utf8.suffix(suffixLength).allSatisfy(UploadName.isAlphanumeric),
            (try? Tag(String(decoding: utf8[1..<(utf8.count - suffixLength - 1)], as: UTF8.self))) != nil
        {
            return .temporary
        }
        return .refused(.notATag(name: name))
    }
}
