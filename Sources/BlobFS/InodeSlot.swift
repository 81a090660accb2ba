import Distribution

/// One inode of the table, packed: about 80 bytes whatever the node, with a blob's digest as raw
/// bytes, its repository as a number, and its descriptor rebuilt on demand rather than stored.
struct InodeSlot {
    enum Kind: UInt8 {
        /// Unused, or on the free list.
        case free
        /// A blob: `digest` (its name's) and `repository` are the key of `DigestIndex`.
        case blob
        /// The root, a directory or an upload: the node itself is kept beside the table.
        case other
    }

    var digest: RawDigest?
    /// A blob's repository, as its index in the table's list of repository names.
    var repository: UInt32 = 0
    var size: Int64 = 0
    var modified: Int64 = 0
    var lookups: UInt64 = 0
    /// Bumped whenever the slot is freed: an inode number (generation and slot) is never used
    /// twice in a mount, as with a counter, so a late `forget` or a listing's `d_ino` names one node.
    var generation: UInt32 = 0
    var kind = Kind.free
    var hasDescriptor = false
    var writableDirectories = false

    /// Stores `attributes` in the slot's fields; false when they cannot be rebuilt from them (a
    /// media type other than octet-stream, a descriptor of another digest), and the caller keeps
    /// them whole beside the table.
    mutating func pack(_ attributes: NodeAttributes, digest nodeDigest: Digest?) -> Bool {
        size = attributes.size
        modified = attributes.modified
        writableDirectories = attributes.writableDirectories
        hasDescriptor = attributes.descriptor != nil
        guard let descriptor = attributes.descriptor else { return true }
        return descriptor.digest == nodeDigest && descriptor.size == attributes.size
            && descriptor.mediaType == Descriptor.octetStream
    }

    /// The attributes `pack` stored; `digest` is the blob's, when the slot has a descriptor.
    func attributes(digest: Digest?) -> NodeAttributes {
        let descriptor = hasDescriptor ? digest.map { Descriptor(digest: $0, size: size) } : nil
        return NodeAttributes(size: size, modified: modified, descriptor: descriptor, writableDirectories: writableDirectories)
    }
}
