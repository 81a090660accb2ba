import Synchronization

/// Inode numbers for nodes, with the kernel's lookup counts: an inode lives while the kernel
/// holds references to it (every positive lookup and readdirplus entry), and goes on `forget`.
final class InodeTable: Sendable {
    static let rootID: UInt64 = 1

    struct Entry: Sendable {
        var node: Node
        var attributes: NodeAttributes
        var lookups: UInt64
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var ids: [Node: UInt64] = [:]
        var next: UInt64 = InodeTable.rootID + 1
    }

    private let state: Mutex<State>

    init(rootAttributes: NodeAttributes) {
        var initial = State()
        initial.entries[Self.rootID] = Entry(node: .root, attributes: rootAttributes, lookups: 1)
        initial.ids[.root] = Self.rootID
        state = Mutex(initial)
    }

    subscript(id: UInt64) -> Entry? {
        state.withLock { $0.entries[id] }
    }

    /// The inode of `node`, created if needed, with one more lookup reference when `countLookup`.
    /// Fresh attributes replace the stored ones (a directory's, or a blob found again).
    func reference(_ node: Node, attributes: NodeAttributes, countLookup: Bool = true) -> UInt64 {
        state.withLock { state in
            if let id = state.ids[node] {
                state.entries[id]!.attributes = attributes
                if countLookup { state.entries[id]!.lookups += 1 }
                return id
            }
            let id = state.next
            state.next += 1
            state.ids[node] = id
            state.entries[id] = Entry(node: node, attributes: attributes, lookups: countLookup ? 1 : 0)
            return id
        }
    }

    /// The attributes of `node` if the kernel holds an inode for it.
    func attributes(of node: Node) -> NodeAttributes? {
        state.withLock { state in state.ids[node].flatMap { state.entries[$0]?.attributes } }
    }

    /// Adds one lookup reference to an inode the kernel has just been given.
    func addLookup(_ id: UInt64) {
        state.withLock { state in
            state.entries[id]?.lookups += 1
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
            guard var entry = state.entries[id] else { return }
            entry.lookups = entry.lookups > count ? entry.lookups - count : 0
            if entry.lookups == 0 {
                state.entries[id] = nil
                state.ids[entry.node] = nil
            } else {
                state.entries[id] = entry
            }
        }
    }
}
