import Distribution
import Instrumentation
import Scrubber
import Storage
import Synchronization

/// The first-read verifier: before any of a blob file's bytes are served, the first read of a
/// name in a data file version hashes the whole file with the name's algorithm and compares.
/// (The other moments a blob is verified at: a commit checks its upload, and `blobfs verify`'s
/// `StoreScrubber` re-hashes a whole store.)
/// Hashing inline while serving would let tools that treat a short read as "the file shrank"
/// (tar pads with zeros and only warns) take the pages served before the mismatch; checked up
/// front, a corrupt blob fails its first read.
///
/// What is remembered is per name and per data file version (device, inode, size, mtime, ctime,
/// from `fstat` of the open file): a data file edited or replaced after it was verified is a new
/// version and is hashed again at its next open, and a version that changed while it was hashed
/// counts as nothing. With a ledger, a sha256 name an earlier mount verified is trusted while
/// its data file is that same version.
final class FirstReadVerifier: Sendable {
    /// What a check found.
    enum Outcome: Sendable, Equatable {
        case intact
        case corrupt(actual: Digest)
    }

    /// What is known of one name: the version it was last checked in, and how it fared.
    private enum Status: Sendable {
        case unchecked
        case checked(DataFileVersion?, Outcome)

        func outcome(for version: DataFileVersion?) -> Outcome? {
            guard case .checked(let checked, let outcome) = self, checked == version else { return nil }
            return outcome
        }
    }

    /// One name's status; its lock is held while the blob is hashed, so concurrent first readers
    /// wait for one pass instead of each making their own.
    private final class Gate: Sendable {
        let status = Mutex(Status.unchecked)
    }

    /// Gates by name, keyed by the raw hash (no heap-allocated hex per blob read in the mount).
    /// Lock order: this map's lock is a leaf, released before a gate's is taken; a gate's lock is
    /// taken before the ledger's.
    private let gates = Mutex<[RawDigest: Gate]>([:])
    /// What earlier mounts verified (`--remember-verified`), if this mount keeps a ledger.
    let ledger: VerificationLedger?

    init(ledger: VerificationLedger? = nil) {
        self.ledger = ledger
    }

    /// What is known of `name` in data file `version`, without hashing; nil when that version
    /// was not checked in this mount.
    func known(_ name: Digest, in version: DataFileVersion?) -> Outcome? {
        let key = RawDigest(name)
        guard let gate = gates.withLock({ $0[key] }) else { return nil }
        return gate.status.withLock { $0.outcome(for: version) }
    }

    /// Whether the ledger vouches for `name` in data file `version`, without hashing or waiting
    /// for a hash in progress (an open deciding on passthrough asks it).
    func ledgerVouches(for name: Digest, in version: DataFileVersion?) -> Bool {
        guard let ledger, let version, name.algorithm == .sha256 else { return false }
        return ledger.vouches(for: name, version)
    }

    /// Hashes the data file `reader` has open with `name`'s algorithm, unless `version` (what the
    /// handle opened) was checked before. Throws `BlobError.changed` when the file is no longer
    /// `version` after the hash: what was hashed is then not known to be what is served.
    /// `hashedNow` is true for the one call that hashed (or asked the ledger): the one that
    /// reports a mismatch, where every concurrent first reader gets the same outcome.
    func check(_ reader: DataFileReader, as name: Digest, version: DataFileVersion?) throws(BlobError) -> (
        outcome: Outcome, hashedNow: Bool
    ) {
        let key = RawDigest(name)
        let gate = gates.withLock { gates in
            if let gate = gates[key] { return gate }
            let gate = Gate()
            gates[key] = gate
            return gate
        }
        return try gate.status.withLock { (status) throws(BlobError) in
            if let known = status.outcome(for: version) { return (known, false) }
            // A blob cache file was hashed to the blob's digest as it arrived, before it was published.
            if reader.verifiedOnArrival, name == reader.descriptor.digest {
                status = .checked(version, .intact)
                return (.intact, true)
            }
            // The ledger is keyed by data file, one digest each: it holds canonical names only.
            if let ledger, let version, name.algorithm == .sha256, ledger.vouches(for: name, version) {
                status = .checked(version, .intact)  // verified by an earlier mount, and not written since
                return (.intact, true)
            }
            let hash: WholeFileHasher.Hash
            do throws(WholeFileHasher.ReadFailure) {
                hash = try WholeFileHasher().hash(reader, algorithms: [name.algorithm], readsVersion: version != nil)
            } catch {
                throw error.error
            }
            // What was hashed is the version this handle opened only if the file kept it throughout.
            if let version, hash.version != version {
                throw .changed(name, path: reader.location)
            }
            let actual = hash.digests[0]
            let outcome: Outcome = actual == name ? .intact : .corrupt(actual: actual)
            BlobfsMetrics.current?.verified(bytes: hash.size, intact: outcome == .intact)
            status = .checked(version, outcome)
            if outcome == .intact, let ledger, let version, name.algorithm == .sha256 {
                ledger.record(name, version)
            }
            return (outcome, true)
        }
    }
}
