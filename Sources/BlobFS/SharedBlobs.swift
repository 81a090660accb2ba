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
/// mount adds later are counted at the next mount. A count that is low only makes a tool copy a
/// blob twice (and a link made while the census runs may be counted twice: one too many only
/// means a partner the tool does not find).
final class SharedBlobs: Sendable {
    private let registry: Registry
    private let logger: Logger
    /// Names per blob (only those with more than one); nil until first needed. Its lock is held
    /// while the census is taken, on purpose: the first attribute replies wait for that one pass.
    private let counts = Mutex<LinkCensus?>(nil)

    init(registry: Registry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    /// Takes the census on another thread now, so that the first attribute reply rarely waits
    /// for it (it holds the lock: a reply that comes first waits for the rest of the pass).
    func startCensus() {
        DispatchQueue.global().async { [self] in
            counts.withLock { counts in
                if counts == nil { counts = census() }
            }
        }
    }

    /// The blob's number of names (at least one).
    func names(of canonical: Digest) -> Int {
        let key = LinkCensus.key(of: canonical)
        return counts.withLock { counts in
            if counts == nil { counts = census() }
            return Int(counts?.names(of: key) ?? 1)
        }
    }

    /// This mount gave a blob that a repository links one more name (`link(2)`): a blob the
    /// census does not list had one.
    func added(_ canonical: Digest) {
        let key = LinkCensus.key(of: canonical)
        counts.withLock { counts in
            guard counts != nil else { return }  // the census, when it is taken, will see it
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
