import Distribution
import Logging
import StorageDriver

/// A tag and the manifest its `current/link` names.
public struct TagLink: Sendable, Hashable {
    public var tag: Tag
    public var digest: Digest

    public init(tag: Tag, digest: Digest) {
        self.tag = tag
        self.digest = digest
    }
}

/// One repository's tags under `_manifests/tags/`, read and written as registry 2.8.2's
/// `tagStore` does (docs/storage-format.md, Manifests and tags).
///
/// A GET by tag reads only `current/link`; the `index/` links record history that nothing on
/// the read path uses, so reads ignore them, and a write adds only the current digest's entry
/// (images-spec §1.2, §2).
public struct TagStore: Sendable {
    public let repository: RepositoryName
    let driver: any StorageDriver
    let logger: Logger

    /// Every tag whose `current/link` holds a sha256 digest, sorted by name (byte order).
    public func all() throws(BlobError) -> [Tag] {
        try currentLinks().map(\.tag)
    }

    /// Every tag with the digest its `current/link` holds, sorted by tag. The directory names
    /// under `_manifests/tags/` are the tags, as `tags/list` has them, but a name outside the tag
    /// grammar, a tag directory without `current/link` (a crash, or a hand edit: the registry
    /// lists it and answers 404 for it), an empty link, a corrupt one, one holding another
    /// algorithm than sha256 (manifests are stored under sha256 only) and one that cannot be read
    /// are left out and logged, never a failure of the listing (issue 12, images-spec §6). Whether
    /// the named manifest exists is not checked: a tag can arrive before its manifest in a restore.
    public func currentLinks() throws(BlobError) -> [TagLink] {
        let root = PathMapper.path(.manifestTags(repository))
        // One pass over `_manifests/tags/`, each `<tag>/current/link` read relative to the open
        // directory (as blob listings read `_layers`), spread over the CPUs.
        let members: [ChildMember]
        switch Result(catching: { () throws(StorageDriverError) in try driver.members(named: "current/link", in: root, limit: LinkedBlobStatter.linkLimit) }) {
        case .success(let read): members = read
        case .failure(.pathNotFound): return []
        case .failure(let error): throw error.blobError
        }
        let listed = try driverCall { () throws(StorageDriverError) in try driver.list(root) }
        var links: [TagLink] = []
        var withLink = Set<String>()
        for member in members {
            withLink.insert(member.child)
            guard let tag = try? Tag(member.child) else {
                logger.warning("tag directory with an invalid tag name left out", metadata: ["repository": "\(repository)", "name": "\(member.child)"])
                continue
            }
            let path = (try? root.appending(member.child).appending("current").appending("link")) ?? root
            do throws(BlobError) {
                guard let target = try LinkedBlobStatter.target(ofLink: member.content, at: path) else {
                    logger.info("tag without a current link left out", metadata: ["repository": "\(repository)", "tag": "\(tag)"])
                    continue
                }
                guard target.algorithm == .sha256 else {
                    throw .corruptLink(path: path.value, reason: "holds \(target): a tag must name a sha256 manifest digest")
                }
                links.append(TagLink(tag: tag, digest: target))
            } catch {
                logger.warning("tag left out", metadata: ["repository": "\(repository)", "tag": "\(tag)", "error": "\(error)"])
            }
        }
        for name in listed where !withLink.contains(name) {
            logger.info("tag without a current link left out", metadata: ["repository": "\(repository)", "tag": "\(name)"])
        }
        return links.sorted { $0.tag.value.utf8.lexicographicallyPrecedes($1.tag.value.utf8) }
    }

    /// The digest `tag`'s `current/link` holds; nil when the tag, its `current/link`, or the
    /// link's content is absent (an empty link is a write in progress or a crash leftover). A
    /// link that is not exactly one sha256 digest is `corruptLink`.
    public func current(_ tag: Tag) throws(BlobError) -> Digest? {
        let path = PathMapper.path(.manifestTagCurrent(repository, tag))
        let target = try LinkedBlobStatter.readLink(path, driver: driver)
        if let target, target.algorithm != .sha256 {
            throw BlobError.corruptLink(path: path.value, reason: "holds \(target): a tag must name a sha256 manifest digest")
        }
        return target
    }

    /// Points `tag` at the manifest `digest` (sha256) as `tagStore.Tag` does: the tag's
    /// `index/sha256/<hex>/link` first, then `current/link`, so that a tag is never current
    /// without its index entry. The manifest need not exist yet (a restore's files arrive in any
    /// order). Tagging again with the same digest rewrites the same bytes.
    public func tag(_ tag: Tag, to digest: Digest) throws(BlobError) {
        guard digest.algorithm == .sha256 else {
            throw BlobError.invalidDigest(digest, reason: "a tag must name a sha256 manifest digest")
        }
        let content = Array(digest.description.utf8)
        try driverCall { () throws(StorageDriverError) in try driver.putContent(PathMapper.path(.manifestTagIndexEntryLink(repository, tag, digest)), content) }
        try driverCall { () throws(StorageDriverError) in try driver.putContent(PathMapper.path(.manifestTagCurrent(repository, tag)), content) }
    }

    /// Removes the tag's whole directory, as `tagStore.Untag` does; false when there was none
    /// (the registry's untag is idempotent). The manifest stays.
    @discardableResult
    public func untag(_ tag: Tag) throws(BlobError) -> Bool {
        switch Result(catching: { () throws(StorageDriverError) in try driver.delete(PathMapper.path(.manifestTag(repository, tag))) }) {
        case .success: return true
        case .failure(.pathNotFound): return false
        case .failure(let error): throw error.blobError
        }
    }
}
