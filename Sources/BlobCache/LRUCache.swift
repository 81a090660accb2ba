/// A least-recently-used map bounded by entry count, with O(1) get, set and remove.
/// Not thread-safe: callers hold it behind a `Mutex`.
struct LRUCache<Key: Hashable, Value> {
    private struct Node {
        var key: Key
        var value: Value
        var newer: Int  // towards the most recently used end; -1 at it
        var older: Int  // towards the least recently used end; -1 at it
    }

    /// Maximum entries; nil is unbounded.
    let capacity: Int?
    private var index: [Key: Int] = [:]
    private var nodes: [Node] = []
    private var free: [Int] = []
    private var newest = -1
    private var oldest = -1

    init(capacity: Int?) {
        precondition(capacity.map { $0 > 0 } ?? true, "an LRU cache needs room for one entry")
        self.capacity = capacity
    }

    var count: Int { index.count }

    /// The value for `key`, which becomes the most recently used.
    mutating func get(_ key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        moveToNewest(i)
        return nodes[i].value
    }

    /// The value for `key` without touching its recency.
    func peek(_ key: Key) -> Value? {
        index[key].map { nodes[$0].value }
    }

    mutating func set(_ key: Key, _ value: Value) {
        if let i = index[key] {
            nodes[i].value = value
            moveToNewest(i)
            return
        }
        if let capacity, index.count >= capacity { evictOldest() }
        let node = Node(key: key, value: value, newer: -1, older: newest)
        let i: Int
        if let reused = free.popLast() {
            nodes[reused] = node
            i = reused
        } else {
            nodes.append(node)
            i = nodes.count - 1
        }
        if newest >= 0 { nodes[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
        index[key] = i
    }

    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        unlink(i)
        free.append(i)
        return nodes[i].value
    }

    private mutating func evictOldest() {
        guard oldest >= 0 else { return }
        remove(nodes[oldest].key)
    }

    private mutating func moveToNewest(_ i: Int) {
        guard i != newest else { return }
        unlink(i)
        nodes[i].older = newest
        nodes[i].newer = -1
        if newest >= 0 { nodes[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }

    private mutating func unlink(_ i: Int) {
        let (newer, older) = (nodes[i].newer, nodes[i].older)
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        nodes[i].newer = -1
        nodes[i].older = -1
    }
}
