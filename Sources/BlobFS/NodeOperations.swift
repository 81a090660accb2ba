import Distribution
import Glibc
import Storage

/// Names and attributes: lookup, getattr, forget, statfs and extended attributes. Like every
/// operation, each decides and returns, or throws why not; RequestShells.swift replies.
extension BlobFileSystem {
    /// The node `name` in the directory `parent`, with one lookup counted; nil when there is no
    /// such name (a negative entry, which the kernel remembers for the negative timeout).
    func lookup(parent: UInt64, name: String) throws(FileSystemError) -> EntryReply? {
        guard let parentEntry = inodes[parent] else { throw .noEntry }
        let found: BlobTree.Entry?
        switch parentEntry.node {
        case .root:
            found = rootEntries.first { $0.name == name }
        case .ociDirectory(let path):
            found = try FileSystemError.storage("lookup \(name)") { () throws(BlobError) in
                try ociTree.lookup(name, in: path, directoryTime: mountTime)
            }
        case .directory(let path):
            if let upload = uploads.named(name, in: path) {
                found = BlobTree.Entry(name: name, node: .upload(upload.serial), attributes: uploadAttributes(upload))
            } else if let link = pendingLinks.named(name, in: path) {
                found = BlobTree.Entry(name: name, node: .pendingLink(link.serial), attributes: linkAttributes(link.manifest))
            } else if unmadeSections.hides(name, in: path) {
                found = nil
            } else {
                found = try FileSystemError.storage("lookup \(name)") { () throws(BlobError) in
                    try tree.lookup(name, in: path, directoryTime: mountTime).map(withDirectoryMode)
                }
            }
        case .blob, .upload, .manifest, .tag, .pendingLink, .ociFile:
            throw .notADirectory
        }
        guard let found else { return nil }
        rememberTarget(of: found)
        return EntryReply(ino: inodes.reference(found.node, attributes: found.attributes), node: found.node, attributes: found.attributes)
    }

    /// Takes back the lookup an entry counted, when the kernel never received it.
    func entryNotDelivered(_ entry: EntryReply) {
        inodes.forget(entry.ino, count: 1)
    }

    func getattr(ino: UInt64) throws(FileSystemError) -> AttributesReply {
        guard let entry = inodes[ino] else { throw .noEntry }
        return AttributesReply(ino: ino, node: entry.node, attributes: currentAttributes(entry))
    }

    /// Where a tag's symbolic link points: within the tags' timeout of the lookup or listing
    /// that read the tag, what it read (`ls -l` reads every link right after listing them);
    /// after it, what its current link holds now. A tag's node is the tag as it named one
    /// manifest, so when the tag has moved (or gone) since, the kernel is told to forget the name
    /// and this link's cached target, and its next walk finds the tag's new node.
    func readlink(ino: UInt64) throws(FileSystemError) -> String {
        guard let entry = inodes[ino] else { throw .noEntry }
        if case .pendingLink(let serial) = entry.node {
            guard let link = pendingLinks[serial] else { throw .noEntry }
            return BlobTree.linkTarget(of: link.manifest)
        }
        guard case .tag(let name, let read) = entry.node else { throw .invalidArgument }
        let now: Digest?
        if let recent = tagTargets.recent(name) {
            now = recent
        } else {
            now = try FileSystemError.storage("readlink \(name)") { () throws(BlobError) in
                try registry.repository(name.repository).tags.current(name.tag)
            }
            if let now { tagTargets.remember(now, for: name) }
        }
        if now != read { tagMoved(name, ino: ino) }
        guard let now else { throw .noEntry }
        return BlobTree.linkTarget(of: now)
    }

    func forget(_ ino: UInt64, count: UInt64) {
        inodes.forget(ino, count: count)
    }

    /// What `df` shows for the mount: the store's capacity, as its driver tells it (a storage
    /// that cannot tell shows an empty filesystem of 4 KiB blocks).
    func statfs() throws(FileSystemError) -> statvfs {
        var info = statvfs()
        info.f_bsize = 4096
        info.f_frsize = 4096
        info.f_namemax = 255
        guard let capacity = try FileSystemError.storage("statfs", { () throws(BlobError) in try registry.capacity() }) else { return info }
        info.f_bsize = UInt(capacity.blockSize)
        info.f_frsize = UInt(capacity.fragmentSize)
        info.f_blocks = fsblkcnt_t(capacity.blocks)
        info.f_bfree = fsblkcnt_t(capacity.freeBlocks)
        info.f_bavail = fsblkcnt_t(capacity.availableBlocks)
        info.f_files = fsfilcnt_t(capacity.files)
        info.f_ffree = fsfilcnt_t(capacity.freeFiles)
        info.f_favail = fsfilcnt_t(capacity.availableFiles)
        info.f_namemax = UInt(capacity.nameMax)
        return info
    }

    /// Only `user.*` attributes exist here: "not supported" for the others (ACLs, SELinux).
    func getxattr(ino: UInt64, name: String, size: Int) throws(FileSystemError) -> AttributeReply {
        guard let entry = inodes[ino] else { throw .noEntry }
        guard name.hasPrefix("user.") else { throw .attributeNotSupported }
        guard let value = extendedAttribute(name, of: entry) else { throw .noSuchAttribute }
        return try attributeReply(Array(value.utf8), size: size)
    }

    /// Never fails for a known inode, so `rsync -X` and `cp -a` work on every file.
    func listxattr(ino: UInt64, size: Int) throws(FileSystemError) -> AttributeReply {
        guard let entry = inodes[ino] else { throw .noEntry }
        return try attributeReply(extendedAttributeNames(entry).flatMap { Array($0.utf8) + [0] }, size: size)
    }

    // MARK: - Helpers

    /// The mount's root: `repo/`, and `oci/` with `--oci`.
    var rootEntries: [BlobTree.Entry] {
        [BlobTree.Entry(name: "repo", node: .directory(path: ""), attributes: directoryAttributes)]
            + (options.ociView ? [BlobTree.Entry(name: "oci", node: .ociDirectory(path: ""), attributes: NodeAttributes(modified: mountTime))] : [])
    }

    var directoryAttributes: NodeAttributes { NodeAttributes(modified: mountTime, writableDirectories: options.readWrite) }

    /// Attributes as they are now: an upload grows while it is written.
    func currentAttributes(_ entry: InodeTable.Entry) -> NodeAttributes {
        if case .upload(let serial) = entry.node, let upload = uploads[serial] { return uploadAttributes(upload) }
        return entry.attributes
    }

    func uploadAttributes(_ upload: PendingUpload) -> NodeAttributes {
        if case .committed(let descriptor) = upload.phase {
            return NodeAttributes(size: descriptor.size, modified: upload.modified, descriptor: descriptor)
        }
        return NodeAttributes(size: upload.size, modified: upload.modified)
    }

    /// Keeps what a tag's entry just read, for the readlink that `ls -l` and path walks send next.
    func rememberTarget(of entry: BlobTree.Entry) {
        if case .tag(let name, let manifest) = entry.node { tagTargets.remember(manifest, for: name) }
    }

    /// A tag's inode names another manifest than its tag does now: the kernel forgets the name
    /// (its next walk looks the tag up again and finds the new node) and the target it cached
    /// for this inode.
    func tagMoved(_ name: TagName, ino: UInt64) {
        notices.withLock { $0 }?.dropPages(of: ino)
        guard let parent = inodes.inode(of: .directory(path: BlobTree.path(of: .tags, in: name.repository))) else { return }
        invalidate(parent: parent, name: name.tag.value)
    }

    /// A symbolic link to `manifest`: its size is its target's length.
    func linkAttributes(_ manifest: Digest) -> NodeAttributes {
        NodeAttributes(size: Int64(BlobTree.linkTarget(of: manifest).utf8.count), modified: mountTime)
    }

    func withDirectoryMode(_ entry: BlobTree.Entry) -> BlobTree.Entry {
        var entry = entry
        entry.attributes.writableDirectories = options.readWrite
        return entry
    }

    /// How long the kernel may keep a node's entry and attributes.
    func timeout(for node: Node) -> Double {
        switch node {
        case .blob, .manifest: options.blobTimeout
        case .upload: 0  // it grows, and becomes a blob
        // A tag moves when the registry pushes it again.
        case .root, .directory, .tag: options.directoryTimeout
        case .pendingLink: 0  // it becomes a tag at its rename
        case .ociDirectory: options.directoryTimeout
        // index.json follows tags as they move: its size is taken again at every use.
        case .ociFile: 0
        }
    }

    /// The `user.blobfs.*` attributes a node has: a blob's or a manifest's digest, size and media
    /// type; directories and tags have none.
    func extendedAttributeNames(_ entry: InodeTable.Entry) -> [String] {
        entry.attributes.descriptor == nil ? [] : ["user.blobfs.digest", "user.blobfs.size", "user.blobfs.mediatype"]
    }

    /// One attribute's value; nil when the node has no such attribute. A manifest's media type is
    /// the one the registry serves it with, found from its bytes only when it is asked for (a
    /// listing, or a listxattr, reads no manifest).
    func extendedAttribute(_ name: String, of entry: InodeTable.Entry) -> String? {
        guard let descriptor = entry.attributes.descriptor else { return nil }
        switch name {
        case "user.blobfs.digest": return descriptor.digest.description
        case "user.blobfs.size": return String(descriptor.size)
        case "user.blobfs.mediatype":
            if case .blob(let blob) = entry.node {
                return mediaTypes.type(of: blob.digest, in: blob.repository) ?? descriptor.mediaType
            }
            guard case .manifest(let manifest) = entry.node else { return descriptor.mediaType }
            let bytes = try? registry.repository(manifest.repository).manifests.get(manifest.digest)
            return bytes.flatMap { try? ManifestContent.servedMediaType(of: $0) } ?? Descriptor.octetStream
        default: return nil
        }
    }

    private func attributeReply(_ value: [UInt8], size: Int) throws(FileSystemError) -> AttributeReply {
        if size == 0 { return .size(value.count) }
        guard size >= value.count else { throw .bufferTooSmall }
        return .bytes(value)
    }
}
