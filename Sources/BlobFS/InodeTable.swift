import Distribution
import Synchronization

/// Inode numbers for nodes, with the kernel's lookup counts: an inode lives while the kernel
/// holds references to it (every positive lookup and readdirplus entry), and goes on `forget`.
///
/// The kernel keeps every blob inode it is given for as long as it likes, so the table is packed:
/// a blob name costs one `InodeSlot` and a bucket of `DigestIndex`, about 90 bytes. An
/// inode number is its slot's index with the slot's generation above it, so finding an inode is
/// an array access and a number, once freed, never names another node.
final class InodeTable: Sendable {
    static let rootID: UInt64 = 1

    /// An inode as the operations see it, rebuilt from its slot.
    struct Entry: Sendable {
        var node: Node
        var attributes: NodeAttributes
        var lookups: UInt64
    }

    fileprivate struct State {
        var slots = SlotArray()
        var free: [UInt32] = []
        var blobs = DigestIndex()
        /// Repository names by number, for blob slots; a store has few, so they are never freed.
        var repositoryNames: [RepositoryName] = []
        var repositoryNumbers: [RepositoryName: UInt32] = [:]
        /// The nodes of `.other` slots (root, directories, uploads): few, so kept whole.
        var others: [Node: UInt32] = [:]
        var otherNodes: [UInt32: Node] = [:]
        /// Attributes that `InodeSlot.pack` cannot hold, by slot.
        var unpacked: [UInt32: NodeAttributes] = [:]
    }

    private let state: Mutex<State>

    /// Inodes held (the root included; slot 0 is never one), for the metrics.
    var count: Int { state.withLock { $0.slots.count - 1 - $0.free.count } }

    init(rootAttributes: NodeAttributes) {
        var initial = State()
        _ = initial.slots.append(InodeSlot())  // slot 0: inode 0 does not exist, and 0 marks an empty bucket
        let root = initial.allocate(.root, digest: nil)
        precondition(UInt64(root) == Self.rootID)
        initial.setAttributes(rootAttributes, of: root, digest: nil)
        initial.slots[root].lookups = 1
        state = Mutex(initial)
    }

    subscript(id: UInt64) -> Entry? {
        state.withLock { state in
            guard let slot = state.slot(of: id) else { return nil }
            let (node, digest) = state.node(of: slot)
            return Entry(node: node, attributes: state.attributes(of: slot, digest: digest), lookups: state.slots[slot].lookups)
        }
    }

    /// The inode of `node`, created if needed, with one more lookup reference when `countLookup`.
    /// Fresh attributes replace the stored ones (a directory's, or a blob found again).
    func reference(_ node: Node, attributes: NodeAttributes, countLookup: Bool = true) -> UInt64 {
        let digest = node.blobName?.digest
        let raw = digest.map(RawDigest.init)
        return state.withLock { state in
            let repository = node.blobName.map { state.repositoryNumber($0.repository) }
            let slot = state.find(node, raw, repository) ?? state.allocate(node, digest: raw, repository: repository ?? 0)
            state.setAttributes(attributes, of: slot, digest: digest)
            if countLookup { state.addLookup(slot) }
            return state.id(of: slot)
        }
    }

    /// The attributes of `node` if the kernel holds an inode for it.
    func attributes(of node: Node) -> NodeAttributes? {
        let digest = node.blobName?.digest
        let raw = digest.map(RawDigest.init)
        return state.withLock { state in
            var repository: UInt32?
            if let name = node.blobName {
                guard let known = state.repositoryNumbers[name.repository] else { return nil }
                repository = known
            }
            return state.find(node, raw, repository).map { state.attributes(of: $0, digest: digest) }
        }
    }

    /// The inode of `node` if the kernel holds one.
    func inode(of node: Node) -> UInt64? {
        let raw = node.blobName.map { RawDigest($0.digest) }
        return state.withLock { state in
            var repository: UInt32?
            if let name = node.blobName {
                guard let known = state.repositoryNumbers[name.repository] else { return nil }
                repository = known
            }
            return state.find(node, raw, repository).map { state.id(of: $0) }
        }
    }

    /// Adds one lookup reference to an inode the kernel has just been given.
    func addLookup(_ id: UInt64) {
        state.withLock { state in
            if let slot = state.slot(of: id) { state.addLookup(slot) }
        }
    }

    /// Removes an inode that no lookup references (one made for a readdirplus entry that did
    /// not fit in the reply).
    func releaseIfUnreferenced(_ id: UInt64) {
        forget(id, count: 0)
    }

    /// Drops `count` references; the inode goes when none are left (never the root).
    func forget(_ id: UInt64, count: UInt64) {
        guard id != Self.rootID else { return }
        state.withLock { state in
            guard let slot = state.slot(of: id) else { return }
            let lookups = state.slots[slot].lookups
            state.slots[slot].lookups = lookups > count ? lookups - count : 0
            if state.slots[slot].lookups == 0 { state.release(slot) }
        }
    }
}

extension InodeTable.State {
    /// Generations stay below 2³¹ so that inode numbers stay below 2⁶³; a slot that reaches
    /// the limit is retired.
    static let lastGeneration: UInt32 = 0x7fff_ffff

    func id(of slot: UInt32) -> UInt64 {
        UInt64(slots[slot].generation) << 32 | UInt64(slot)
    }

    /// The live slot that `id` names, if any: an old generation names nothing.
    func slot(of id: UInt64) -> UInt32? {
        let slot = UInt32(truncatingIfNeeded: id)
        guard slot > 0, slot < slots.count, slots[slot].kind != .free, id >> 32 == UInt64(slots[slot].generation) else {
            return nil
        }
        return slot
    }

    func find(_ node: Node, _ digest: RawDigest?, _ repository: UInt32?) -> UInt32? {
        if let digest, let repository { return blobs.find(digest, repository: repository, in: slots) }
        return others[node]
    }

    func node(of slot: UInt32) -> (Node, Digest?) {
        guard slots[slot].kind == .blob, let digest = slots[slot].digest?.digest else { return (otherNodes[slot]!, nil) }
        return (.blob(BlobName(repository: repositoryNames[Int(slots[slot].repository)], digest: digest)), digest)
    }

    /// The number of a repository name, given one on first use.
    mutating func repositoryNumber(_ name: RepositoryName) -> UInt32 {
        if let known = repositoryNumbers[name] { return known }
        let number = UInt32(repositoryNames.count)
        repositoryNames.append(name)
        repositoryNumbers[name] = number
        return number
    }

    func attributes(of slot: UInt32, digest: Digest?) -> NodeAttributes {
        unpacked[slot] ?? slots[slot].attributes(digest: digest)
    }

    mutating func setAttributes(_ attributes: NodeAttributes, of slot: UInt32, digest: Digest?) {
        if slots[slot].pack(attributes, digest: digest) {
            if !unpacked.isEmpty { unpacked[slot] = nil }
        } else {
            unpacked[slot] = attributes
        }
    }

    mutating func addLookup(_ slot: UInt32) {
        slots[slot].lookups += 1
    }

    /// A slot for `node` with no references yet: a freed one if any, else a new one.
    mutating func allocate(_ node: Node, digest: RawDigest?, repository: UInt32 = 0) -> UInt32 {
        var fresh = InodeSlot()
        fresh.digest = digest
        fresh.repository = repository
        fresh.kind = digest == nil ? .other : .blob
        let slot: UInt32
        if let reused = free.popLast() {
            fresh.generation = slots[reused].generation
            slots[reused] = fresh
            slot = reused
        } else {
            slot = slots.append(fresh)
        }
        if digest != nil {
            blobs.insert(slot, in: slots)
        } else {
            others[node] = slot
            otherNodes[slot] = node
        }
        return slot
    }

    mutating func release(_ slot: UInt32) {
        if slots[slot].kind == .blob {
            blobs.remove(slot, in: slots)
        } else if let node = otherNodes.removeValue(forKey: slot) {
            others[node] = nil
        }
        if !unpacked.isEmpty { unpacked[slot] = nil }
        var freed = InodeSlot()
        freed.generation = slots[slot].generation + 1
        slots[slot] = freed
        if freed.generation < Self.lastGeneration { free.append(slot) }
    }
}

extension Node {
    /// A blob's name; nil for every other node.
    var blobName: BlobName? {
        if case .blob(let name) = self { return name }
        return nil
    }
}
