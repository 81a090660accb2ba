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
/// The names are counted over every repository's links once, when a blob's attributes are first
/// reported, and then follow this mount's own links (`link(2)`, commits); links the registry or
/// another mount adds later are counted at the next mount. A count that is low only makes a tool
/// copy a blob twice.
final class SharedBlobs: Sendable {
    private let registry: Registry
    private let logger: Logger
    /// Names per blob, by raw canonical digest; nil until first needed. Its lock is held while the
    /// census is taken, on purpose: the first attribute replies wait for that one pass.
    private let counts = Mutex<[RawDigest: UInt32]?>(nil)

    init(registry: Registry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    /// The blob's number of names (at least one).
    func names(of canonical: Digest) -> Int {
        let key = RawDigest(canonical)
        return counts.withLock { counts in
            if counts == nil { counts = census() }
            return Int(max(1, counts?[key] ?? 1))
        }
    }

    /// This mount gave the blob one more name.
    func added(_ canonical: Digest) {
        let key = RawDigest(canonical)
        counts.withLock { counts in
            guard counts != nil else { return }  // the census, when it is taken, will see it
            counts?[key, default: 0] += 1
        }
    }

    /// The `st_ino` of every name of the blob: the canonical digest's first 63 bits with the top
    /// bit set. Node numbers (a slot and a generation below 2^31) never have it, so a blob's
    /// number is never another node's, and two blobs share one only if their digests agree in 63
    /// bits.
    static func inodeNumber(of canonical: Digest) -> UInt64 {
        var value: UInt64 = 0
        for c in canonical.hex.utf8.prefix(16) {
            value = value << 4 | UInt64(c <= UInt8(ascii: "9") ? c &- UInt8(ascii: "0") : c &- UInt8(ascii: "a") &+ 10)
        }
        return 1 << 63 | value >> 1
    }

    private func census() -> [RawDigest: UInt32] {
        do {
            var result: [RawDigest: UInt32] = [:]
            for (digest, count) in try registry.linkCensus() { result[RawDigest(digest)] = UInt32(clamping: count) }
            return result
        } catch {
            logger.warning("cannot count the names of blobs: every blob shows one link", metadata: ["error": "\(error)"])
            return [:]
        }
    }
}
