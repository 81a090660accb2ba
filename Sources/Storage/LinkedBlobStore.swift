import Distribution
import Logging
import StorageDriver

/// One repository's blob store: only blobs linked in the repository are visible, and only it
/// writes into the global store (docs/storage-format.md, Blob services and how the registry wires
/// them).
public struct LinkedBlobStore: BlobStore {
    public let repository: RepositoryName
    let driver: any StorageDriver
    /// The access check: the linked statter, behind the repository-scoped cache if any.
    let accessController: any BlobDescriptorService
    let global: GlobalBlobStore
    let linkSet: LinkSet
    let deleteEnabled: Bool
    let logger: Logger

    public func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
        try accessController.stat(digest)
    }

    /// The canonical digest this repository's link for `name` holds, read from storage and never
    /// from a cache: membership as the registry records it, so a poisoned or stale cache cannot
    /// make a repository serve a blob it does not link. A sha256 name's link must hold the name
    /// itself, an alias's a sha256 digest (`corruptLink` otherwise); no link, or an empty one,
    /// is `unknown`.
    public func linkTarget(_ name: Digest) throws(BlobError) -> Digest {
        guard let target = try LinkedBlobStatter.readLink(of: name, in: linkSet, of: repository, driver: driver) else { throw .unknown(name) }
        try LinkedBlobStatter.checkTarget(target, of: name, at: linkSet.path(repository, name))
        return target
    }

    /// `name` as a mount serves it: its link read from storage (`linkTarget`), then its data file
    /// statted (size and time are the data file's; a cache adds only the media type, and only
    /// when it agrees). A link whose data is gone is `unknown`, as the registry answers.
    public func resolve(_ name: Digest) throws(BlobError) -> BlobDataFile {
        try resolve(name, linkedTo: try linkTarget(name))
    }

    /// `name` as a mount serves it, for a link already read: `target` is what `linkTarget(name)`
    /// returned. One stat of the data file, so that a cold lookup costs one link read and one
    /// stat; a link whose data is gone is `unknown`, as in `resolve(_:)`.
    public func resolve(_ name: Digest, linkedTo target: Digest) throws(BlobError) -> BlobDataFile {
        do {
            return try global.describe(target)
        } catch .unknown {
            throw .unknown(name)
        }
    }

    public func get(_ digest: Digest) throws(BlobError) -> [UInt8] {
        var stream = BlobStream(try open(digest))
        return try stream.readToEnd()
    }

    /// One stat through the access check, then a reader that already knows the size.
    public func open(_ digest: Digest) throws(BlobError) -> any BlobReader {
        try global.open(try stat(digest))
    }

    /// A reader for a descriptor this repository has already resolved (no stat at all).
    public func open(_ descriptor: Descriptor) throws(BlobError) -> DataFileReader {
        try global.open(descriptor)
    }

    public func put(mediaType: String, _ bytes: [UInt8]) throws(BlobError) -> Descriptor {
        let descriptor = try global.put(mediaType: mediaType, bytes)
        try accessController.setDescriptor(descriptor.digest, descriptor)
        try link(descriptor, aliases: [])
        return descriptor
    }

    public func create() throws(BlobError) -> any BlobWriter {
        try createUpload()
    }

    /// Starts an upload, with its concrete type: positional writes, its phase, and a digest of
    /// `alsoDigest` (sha384, sha512) computed while writing, so that a commit under a name of
    /// that algorithm needs no second pass over the data.
    public func createUpload(alsoDigest: DigestAlgorithm? = nil) throws(BlobError) -> UploadWriter {
        try UploadWriter.create(in: self, alsoDigest: alsoDigest)
    }

    public func resume(id: String) throws(BlobError) -> any BlobWriter {
        try UploadWriter.resume(UploadID(id), in: self)
    }

    /// Removes this repository's link only; the data stays for other repositories and GC.
    public func delete(_ digest: Digest) throws(BlobError) {
        guard deleteEnabled else { throw .unsupported("delete (deletes are disabled)") }
        _ = try stat(digest)
        defer { global.listedLinks.forget(linkSet.root(repository)) }
        try accessController.clear(digest)
    }

    /// Every digest with a link file in this repository, aliases included, in sorted order.
    public func enumerate(_ body: (Digest) throws(BlobError) -> Void) throws(BlobError) {
        for link in try links() { try body(link.digest) }
    }

    /// Every link file of this repository with what it holds, sorted by algorithm and digest: one
    /// pass over `_layers/<alg>/` (what is not an algorithm we know, old tarsum trees, is skipped).
    /// A link that holds another blob than its name promises is `corruptLink`, as in `linkTarget`.
    public func links() throws(BlobError) -> [RepositoryLink] {
        let root = linkSet.root(repository)
        var result: [RepositoryLink] = []
        do throws(StorageDriverError) {
            for algorithm in try driver.list(root).compactMap(DigestAlgorithm.init(rawValue:)) {
                let directory = try root.appending(algorithm.rawValue)
                let members: [ChildMember]
                do throws(StorageDriverError) {
                    members = try driver.members(named: "link", in: directory, limit: LinkedBlobStatter.linkLimit)
                } catch .pathNotFound {
                    continue  // a file, or removed meanwhile
                }
                for member in members {
                    guard let digest = try? Digest(parsing: "\(algorithm.rawValue):\(member.child)") else { continue }
                    // Only for errors: a checked path per link is measurable in a large listing.
                    var path: DriverPath { (try? directory.appending(member.child).appending("link")) ?? directory }
                    let target = Result { () throws(BlobError) -> Digest? in
                        let target = try LinkedBlobStatter.target(ofLink: member.content, at: path)
                        if let target { try LinkedBlobStatter.checkTarget(target, of: digest, at: path) }
                        return target
                    }
                    result.append(RepositoryLink(digest: digest, target: target))
                }
            }
        } catch .pathNotFound {
            return []
        } catch {
            throw error.blobError
        }
        return result
    }

    /// Links `source`'s blob into this repository without copying data (a cross-repository mount).
    public func mount(_ digest: Digest, from source: LinkedBlobStore) throws(BlobError) -> Descriptor {
        let descriptor = try source.stat(digest)
        try link(descriptor, aliases: [digest])
        return descriptor
    }

    /// Writes a link for the canonical digest and each alias; every link holds the canonical
    /// digest, with no newline.
    func link(_ canonical: Descriptor, aliases: [Digest]) throws(BlobError) {
        let content = Array(canonical.digest.description.utf8)
        defer { global.listedLinks.forget(linkSet.root(repository)) }
        var linked = Set<Digest>()
        for digest in [canonical.digest] + aliases where linked.insert(digest).inserted {
            try driverCall { () throws(StorageDriverError) in try driver.putContent(linkSet.path(repository, digest), content) }
        }
    }
}
