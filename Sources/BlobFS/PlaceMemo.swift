import Synchronization

/// What each directory path of the tree is (`BlobTree.place(of:)`), remembered: every lookup
/// and listing asks it of its parent's path, and parsing it again (split, one validation per
/// component, the repository name rebuilt) was about a tenth of a cold lookup's CPU. A place is
/// a pure function of the path, so nothing ever makes an entry wrong; the memo is only bounded.
final class PlaceMemo: Sendable {
    static let shared = PlaceMemo(capacity: 4096)

    /// Holds no other lock and does no I/O while held.
    private let places: Mutex<[String: BlobTree.Place?]>
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        places = Mutex([:])
    }

    func place(of path: String, parsing parse: (String) -> BlobTree.Place?) -> BlobTree.Place? {
        if let known = places.withLock({ $0[path] }) { return known }
        let place = parse(path)
        places.withLock { places in
            // More directories than this are walked at once only by a crawl of a huge store:
            // starting over costs one parse per directory.
            if places.count >= capacity { places.removeAll(keepingCapacity: true) }
            places[path] = place
        }
        return place
    }
}
