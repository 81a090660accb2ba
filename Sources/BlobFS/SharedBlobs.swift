import Dispatch
import Distribution
import Logging
import Storage
import Synchronization

/// One inode number per blob, however many names it has. A blob linked in several repositories
/// (or under a sha512 alias beside its sha256 name) is one file's data, and tools that keep hard
/// links (`rsync -aH`, `cp -a`, `tar`, `du`) store and count it once when its names report the same
/// `st_ino` and an `st_nlink` above one. Each name stays its own FUSE node (an open re-checks the
/// link of the repository it was looked up in); only the numbers the kernel reports are shared:
/// `st_ino` comes from the blob's canonical digest, in a range the node numbers never use, and
/// `st_nlink` is the blob's number of names in the store.
///
/// The names are counted over every repository's links once (`Registry.linkCensus`): from the
/// mount's start in the background (`startLinkCensus`), or else when a blob's attributes are
/// first reported, and then follow this mount's own `link(2)`s; links the registry or another
/// mount adds later are counted at the next mount. A reply waits for the census at most
/// `censusWait`, then reports one name until it ends. A count that is low only makes a tool copy
/// a blob twice (so does a link made while the census runs, which it may miss).
final class SharedBlobs: Sendable {
    private let registry: Registry
    private let logger: Logger
    /// How long an attribute reply waits for the census before it reports one name. On a local
    /// store the census of 100,000 links takes tens of milliseconds; on S3 it is listings of the
    /// name tree and of each repository's links, growing with the links (a registry of a million
    /// would hold the mount's first `stat` for seconds): past this wait, replies report one name
    /// until the census ends (a tool then copies those blobs twice, no worse).
    let censusWait: Duration
    /// Names per blob (only those with more than one); nil until the census ends. A leaf, held
    /// only to read or change it, never across the census.
    private let counts = Mutex<LinkCensus?>(nil)
    /// Whether the census was started (once per mount).
    private let started = Atomic<Bool>(false)
    /// Left when the census ends: what a reply waits on, up to `censusWait`.
    private let finished = DispatchGroup()
    /// Whether a reply has already gone without the census (logged once).
    private let answeredWithout = Atomic<Bool>(false)

    init(registry: Registry, logger: Logger, censusWait: Duration = .seconds(1)) {
        self.registry = registry
        self.logger = logger
        self.censusWait = censusWait
        finished.enter()
    }

    /// Takes the census on another thread (once), so that the first attribute reply rarely waits
    /// for it.
    func startCensus() {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        DispatchQueue.global().async { [self] in
            let taken = census()
            counts.withLock { $0 = taken }
            finished.leave()
        }
    }

    /// The blob's number of names (at least one): from the census, waiting for it up to
    /// `censusWait`; one while it is still being taken after that.
    func names(of canonical: Digest) -> Int {
        let key = LinkCensus.key(of: canonical)
        if let known = counts.withLock({ $0 }) { return Int(known.names(of: key)) }
        startCensus()
        let parts = censusWait.components
        let nanoseconds = Int(parts.seconds) * 1_000_000_000 + Int(parts.attoseconds / 1_000_000_000)
        if finished.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success, let known = counts.withLock({ $0 }) {
            return Int(known.names(of: key))
        }
        if !answeredWithout.exchange(true, ordering: .relaxed) {
            logger.info("the count of blobs' names is still being taken: until it ends, blobs show one link each", metadata: [
                "waited": "\(censusWait)"
            ])
        }
        return 1
    }

    /// This mount gave a blob that a repository links one more name (`link(2)`): a blob the
    /// census does not list had one.
    func added(_ canonical: Digest) {
        let key = LinkCensus.key(of: canonical)
        counts.withLock { counts in
            // A census still being taken may or may not list it: a count one low at worst.
            guard counts != nil else { return }
            counts?.shared[key, default: 1] += 1
        }
    }

    /// The `st_ino` of every name of the blob: its census key (the canonical digest's first 64
    /// bits) shifted right by one, with the top bit set. Node numbers (a slot and a generation
    /// below 2^31) never have it, so a blob's number is never another node's, and two blobs share
    /// one only if their digests agree in 63 bits.
    static func inodeNumber(of canonical: Digest) -> UInt64 {
        1 << 63 | LinkCensus.key(of: canonical) >> 1
    }

    private func census() -> LinkCensus {
        do {
            return try registry.linkCensus()
        } catch {
            logger.warning("cannot count the names of blobs: every blob shows one link", metadata: ["error": "\(error)"])
            return LinkCensus()
        }
    }
}

extension BlobFileSystem {
    /// Starts counting the names of blobs (`SharedBlobs`) in the background, for a mount that
    /// reports shared blobs as hard links: called as the mount starts, before the kernel asks.
    public func startLinkCensus() {
        guard options.hardLinks else { return }
        sharedBlobs.startCensus()
    }
}
