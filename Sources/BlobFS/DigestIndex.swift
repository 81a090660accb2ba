import Distribution

/// The blob slots by name (digest and repository number): open addressing with linear probing over 4-byte slot numbers, the
/// digests themselves staying in the slots. A `[RawDigest: UInt32]` would hold a second copy of
/// every digest and, at its load factor, about 100 bytes per blob; this holds 8 to 16.
struct DigestIndex {
    // Slot numbers; 0 (a slot never used) marks an empty bucket. The count is a power of two.
    private var buckets = [UInt32](repeating: 0, count: 1024)
    private var count = 0

    /// The slot of `digest` in the repository numbered `repository`.
    func find(_ digest: RawDigest, repository: UInt32, in slots: SlotArray) -> UInt32? {
        let mask = buckets.count - 1
        var i = Self.hash(digest, repository) & mask
        while buckets[i] != 0 {
            if slots[buckets[i]].repository == repository, slots[buckets[i]].digest == digest { return buckets[i] }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Adds `slot`, whose digest is set and not in the index yet.
    mutating func insert(_ slot: UInt32, in slots: SlotArray) {
        if (count + 1) * 2 > buckets.count { grow(slots) }
        place(slot, in: slots)
        count += 1
    }

    /// Removes `slot`, keeping every other slot reachable from its home bucket (backward shift,
    /// so no tombstones pile up).
    mutating func remove(_ slot: UInt32, in slots: SlotArray) {
        let mask = buckets.count - 1
        var hole = home(slot, slots)
        while buckets[hole] != slot {
            guard buckets[hole] != 0 else { return }
            hole = (hole + 1) & mask
        }
        var next = hole
        while true {
            next = (next + 1) & mask
            guard buckets[next] != 0 else { break }
            // An entry may move back into the hole only if its home is not between them.
            let wanted = home(buckets[next], slots)
            let distanceToHole = (hole - wanted) & mask
            let distanceToNext = (next - wanted) & mask
            if distanceToHole <= distanceToNext {
                buckets[hole] = buckets[next]
                hole = next
            }
        }
        buckets[hole] = 0
        count -= 1
    }

    private func home(_ slot: UInt32, _ slots: SlotArray) -> Int {
        Self.hash(slots[slot].digest!, slots[slot].repository) & (buckets.count - 1)
    }

    /// A base layer is linked in many repositories: the repository number is mixed in so that
    /// its names do not all probe from one bucket.
    private static func hash(_ digest: RawDigest, _ repository: UInt32) -> Int {
        digest.hashValue ^ Int(truncatingIfNeeded: UInt64(repository) &* 0x9E37_79B9_7F4A_7C15)
    }

    private mutating func place(_ slot: UInt32, in slots: SlotArray) {
        let mask = buckets.count - 1
        var i = home(slot, slots)
        while buckets[i] != 0 { i = (i + 1) & mask }
        buckets[i] = slot
    }

    private mutating func grow(_ slots: SlotArray) {
        let old = buckets
        buckets = [UInt32](repeating: 0, count: old.count * 2)
        for slot in old where slot != 0 { place(slot, in: slots) }
    }
}
