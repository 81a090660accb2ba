import Distribution

/// What one daemon knows of its cache directory: each published blob's size, when it was last
/// used, and how many readers of this process hold it open. Pure bookkeeping, no I/O: the
/// `BlobDataCache` holds it under its lock and does the file work outside.
struct BlobCacheIndex: Sendable {
    struct Entry: Sendable, Hashable {
        var size: Int64
        /// Nanoseconds since the epoch: the last open or close in this process, or at start the
        /// file's later of access and modification time (the kernel moves the access time of a
        /// file read through passthrough too; blobfs never touches the file, whose change time
        /// is part of the version an open handle checks at every read).
        var lastUse: Int64
        /// Readers of this process holding the file open: never a victim while above zero.
        var opens: Int = 0
    }

    private(set) var entries: [Digest: Entry] = [:]
    /// Bytes of every entry.
    private(set) var total: Int64 = 0
    /// Bytes promised to fetches in flight: a fetch reserves its blob's size before its first
    /// GET, so concurrent fetches of different blobs never count the same free room twice.
    private(set) var reserved: Int64 = 0

    /// Records a published file (replacing what was known of that digest).
    mutating func insert(_ digest: Digest, size: Int64, lastUse: Int64) {
        let opens = entries[digest]?.opens ?? 0
        if let old = entries[digest] { total -= old.size }
        entries[digest] = Entry(size: size, lastUse: lastUse, opens: opens)
        total += size
    }

    @discardableResult
    mutating func remove(_ digest: Digest) -> Entry? {
        guard let old = entries.removeValue(forKey: digest) else { return nil }
        total -= old.size
        return old
    }

    /// One more reader of `digest` (known now, whoever published it).
    mutating func pin(_ digest: Digest, size: Int64, now: Int64) {
        if entries[digest] == nil { insert(digest, size: size, lastUse: now) }
        entries[digest]!.opens += 1
        entries[digest]!.lastUse = now
    }

    /// One reader fewer; its close counts as a use.
    mutating func unpin(_ digest: Digest, now: Int64) {
        guard entries[digest] != nil else { return }
        entries[digest]!.opens = max(0, entries[digest]!.opens - 1)
        entries[digest]!.lastUse = now
    }

    /// Makes room for `size` more bytes under `capacity`: the least recently used files that no
    /// reader of this process holds, oldest first, taken out of the index (so no other fetch
    /// picks them) and returned for the caller to remove; `size` is reserved. Nil, with nothing
    /// changed, when even every unopened file would not make room.
    mutating func reserve(_ size: Int64, capacity: Int64) -> [(digest: Digest, entry: Entry)]? {
        var excess = total + reserved + size - capacity
        guard excess > 0 else {
            reserved += size
            return []
        }
        // Sorting every entry costs O(n log n) per eviction; the cache holds blobs (megabytes
        // each), so n stays in the thousands and an eviction is rare next to a fetch.
        var victims: [(digest: Digest, entry: Entry)] = []
        for (digest, entry) in entries.filter({ $0.value.opens == 0 }).sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            guard excess > 0 else { break }
            victims.append((digest, entry))
            excess -= entry.size
        }
        guard excess <= 0 else { return nil }
        for victim in victims { remove(victim.digest) }
        reserved += size
        return victims
    }

    /// Ends a reservation, whether its fetch published or failed.
    mutating func release(_ size: Int64) {
        reserved = max(0, reserved - size)
    }

    /// Takes files out, least recently used first, until the total is within `capacity`
    /// (at start, after a smaller `--cache-size`).
    mutating func overflow(capacity: Int64) -> [(digest: Digest, entry: Entry)] {
        guard total > capacity else { return [] }
        return reserve(0, capacity: capacity) ?? []
    }
}
