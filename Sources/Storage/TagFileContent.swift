import Distribution

/// What a regular file written under a tag's name in a repository's `tags/` holds, for a restore
/// through a read-write mount (issue 12; images-spec §4.3, §5.2). A tag is a symbolic link in the
/// tree, but copies that drop or follow links bring it back as a file:
/// - empty: GNU tar's placeholder for a link whose target holds `..` (replaced by the link at the
///   end of the archive, so it is no tag yet);
/// - `sha256:<64 hex>`, with an optional trailing newline: a file holding the tag's digest
///   (`echo sha256:… > tags/v1`, a tree rendered with tags as files);
/// - the manifest's own bytes: a dereferenced copy (`rsync -L`, `cp -L`, `tar -h`).
///
/// Pure: bytes in, answer out. Anything else is refused, so that nothing a tool wrote by mistake
/// becomes a tag.
public enum TagFileContent: Sendable, Hashable {
    case empty
    /// The manifest a digest file names (sha256: the registry tags only sha256 manifests).
    case digest(Digest)
    /// A manifest's bytes and their sha256 digest: stored as a revision, then tagged.
    case manifest(Digest, bytes: [UInt8])

    /// The longest digest file: `sha256:` and 64 hex digits, and a newline.
    static let digestFileLimit = 7 + 64 + 1

    public init(_ bytes: [UInt8]) throws(TagFileContentError) {
        if bytes.isEmpty {
            self = .empty
            return
        }
        guard bytes.count <= ManifestStore.sizeLimit else { throw .tooLarge(size: bytes.count) }
        // JSON may start with whitespace (ManifestContent reads it as Go does).
        let jsonWhitespace: Set<UInt8> = [0x20, 0x09, 0x0a, 0x0d]
        let opensObject = bytes.first { !jsonWhitespace.contains($0) } == UInt8(ascii: "{")
        if !opensObject, bytes.count <= Self.digestFileLimit + 64 {
            // Short and no JSON object: a digest or nothing.
            let line = bytes.last == UInt8(ascii: "\n") ? bytes.dropLast() : bytes[...]
            let text = String(decoding: line, as: UTF8.self)
            let digest: Digest
            do {
                digest = try Digest(parsing: text)
            } catch {
                throw .notADigestOrManifest(reason: "\(text.debugDescription) is not a digest: \(error)")
            }
            guard digest.algorithm == .sha256 else { throw .notSHA256(digest) }
            self = .digest(digest)
            return
        }
        // A manifest is what registry 2.8.2 would serve from its storage: a media type it
        // answers with, and references that are digests (the same reading as a GET's).
        do {
            _ = try ManifestContent.servedMediaType(of: bytes)
            _ = try ManifestContent.references(of: bytes)
        } catch {
            throw .notADigestOrManifest(reason: "\(error)")
        }
        self = .manifest(Digester.digest(of: bytes), bytes: bytes)
    }

    /// The manifest the tag names; nil for a placeholder.
    public var manifest: Digest? {
        switch self {
        case .empty: nil
        case .digest(let digest), .manifest(let digest, _): digest
        }
    }
}

/// Why a file in `tags/` cannot become a tag.
public enum TagFileContentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A digest of another algorithm: the registry stores and tags manifests under sha256 only.
    case notSHA256(Digest)
    /// Over the registry's 4 MiB manifest limit.
    case tooLarge(size: Int)
    /// Neither a digest nor manifest bytes the registry serves.
    case notADigestOrManifest(reason: String)
    /// Empty where a tag must be decided (a rename onto a tag): an empty file is only GNU tar's
    /// placeholder, made under the tag's own name.
    case empty

    public var description: String {
        let reason =
            switch self {
            case .notSHA256(let digest): "\(digest) is not a sha256 digest: the registry tags sha256 manifests only"
            case .tooLarge(let size): "\(size) bytes is over the registry's 4 MiB manifest limit"
            case .notADigestOrManifest(let reason): "neither a manifest digest nor a manifest: \(reason)"
            case .empty: "the file is empty"
            }
        return "not a tag: \(reason); a file in tags/ becomes a tag when it holds sha256:<64 hex> (and an optional newline) "
            + "or a manifest's bytes (a dereferenced copy), or stays an empty placeholder until a symbolic link replaces it"
    }
}

extension Repository {
    /// Points `tag` at what a tag file holds, as a restore writes it: a manifest's bytes are
    /// stored first as a revision (`ManifestStore.put`, verified like any manifest), then the tag
    /// is written (`TagStore.tag`); a digest is tagged at once (its manifest may arrive later, in a
    /// restore's any order). A placeholder writes nothing. Returns the manifest tagged.
    @discardableResult
    public func tag(_ tag: Tag, from content: TagFileContent) throws(BlobError) -> Digest? {
        switch content {
        case .empty:
            return nil
        case .digest(let digest):
            try tags.tag(tag, to: digest)
            return digest
        case .manifest(let digest, let bytes):
            try manifests.put(bytes, as: digest)
            try tags.tag(tag, to: digest)
            return digest
        }
    }
}
