import Dispatch
import Distribution
import Storage

/// What an open decided before it can be answered: its reply, a blob to hash first, or a blob
/// to fetch first (into the local blob cache, from a remote store). The last two are answered by
/// `completeOpen`, which the open shell runs off libfuse's worker.
enum OpenDecision: Sendable {
    case ready(OpenReply)
    case afterCheck(UncheckedOpen)
    case afterFetch(UnfetchedOpen)
    /// A write open of a blob that readers hold through passthrough: answered once they close.
    case afterReaders(WriteAwaitingReaders)
}

/// A write open of a blob (an identical rewrite), its handle made, whose reply waits until the
/// passthrough opens of its inode are released (PassthroughFiles.beginWrite).
struct WriteAwaitingReaders: Sendable {
    let ino: UInt64
    let reply: OpenReply
    let readers: DispatchGroup
}

/// A blob's open whose link was checked but whose data must first come from a remote store: fetched
/// whole into the blob cache (seconds per GiB from S3), or the first block of a stream for a blob
/// larger than the cache; either up to the S3 client's deadline when the store stalls.
struct UnfetchedOpen: Sendable {
    let ino: UInt64
    let name: BlobName
    let descriptor: Descriptor
}

/// A blob's open whose data file is open but not yet known to hash to the blob's name.
struct UncheckedOpen: Sendable {
    let ino: UInt64
    let name: BlobName
    let descriptor: Descriptor
    let reader: DataFileReader
    /// The data file version opened (nil with --no-verify).
    let version: DataFileVersion?
}

/// Passthrough's side of opening a blob (docs/architecture.md, "Passthrough"): the kernel reads a
/// passthrough file without asking the daemon, so the check that otherwise comes with the first
/// read comes before the open's reply.
extension BlobFileSystem {
    /// Blobs up to this size are hashed before an open's reply on the libfuse worker that took
    /// the open (at most about a millisecond); larger ones on a thread of their own, which then
    /// replies. The hand-off cost more than the hash for small blobs: `make bench`'s 3g (open and
    /// close of 10,000 blobs of 64 B–4 KiB, first opens) went from 80 to 107 µs per open when
    /// every check was handed off.
    static let inlineOpenCheckLimit: Int64 = 1 << 20

    /// Whether this open's blob is hashed before the reply: only where the open could then be
    /// passthrough (passthrough on, a local data file of the blob's size, an inode with no
    /// daemon-served opens, whose mode it would have to join) and the ledger does not vouch for
    /// it. Every other open keeps today's order: the first read hashes.
    func checkBeforeReplying(_ opening: UncheckedOpen) -> Bool {
        guard passthrough.isOn, !passthrough.files.hasDaemonOpens(opening.ino),
            !verifier.ledgerVouches(for: opening.name.digest, in: opening.version),
            let file = try? opening.reader.localFile(), file.size == opening.descriptor.size
        else { return false }
        return true
    }

    /// The rest of an open whose blob is hashed first, on a thread of its own (about a second per
    /// GiB). Concurrent openers of the same name wait for one pass (FirstReadVerifier's gate); a
    /// corrupt blob fails the open with EIO, and every later open of that version.
    func completeOpen(_ opening: UncheckedOpen) throws(FileSystemError) -> OpenReply {
        let verdict: (outcome: FirstReadVerifier.Outcome, hashedNow: Bool)
        do throws(BlobError) {
            verdict = try verifier.check(opening.reader, as: opening.name.digest, version: opening.version)
        } catch {
            throw .storage(error, operation: "verify \(opening.name)")
        }
        if case .corrupt(let actual) = verdict.outcome {
            // One line per mismatch found, not per opener that waited for the same pass.
            if verdict.hashedNow {
                logger.error("blob content does not match its name: reads fail with EIO", metadata: [
                    "blob": "\(opening.name)", "path": "\(options.storageRoot)\(opening.reader.location)",
                    "expected": "\(opening.name.digest)", "actual": "\(actual)", "canonical": "\(opening.descriptor.digest)",
                ])
            }
            notices.withLock { $0 }?.dropPages(of: opening.ino)
            throw .blobRefused
        }
        return openBlob(opening, needsCheck: false)
    }

    /// How the kernel reads this open of a blob: directly from the data file when passthrough is
    /// on, the blob is verified (in this mount, by the ledger, or not at all with --no-verify)
    /// and its data file is a local file of exactly the blob's size (the kernel reads a
    /// passthrough file to its real end); else the daemon serves it. `PassthroughFiles` keeps
    /// each inode in one mode while it has opens.
    func passthroughGrant(_ opening: UncheckedOpen, needsCheck: inout Bool) -> PassthroughFiles.Grant {
        guard passthrough.isTracking else { return .untracked }
        var backing: LocalDataFile?
        if passthrough.isOn {
            if needsCheck && verifier.ledgerVouches(for: opening.name.digest, in: opening.version) { needsCheck = false }
            // A data file that cannot even be statted now is left to the daemon's reads, which report it.
            if !needsCheck, let file = try? opening.reader.localFile() {
                if file.size == opening.descriptor.size {
                    backing = file
                } else {
                    logger.debug("the data file's size is not the blob's: the daemon serves it", metadata: [
                        "blob": "\(opening.name)", "size": "\(file.size)", "expected": "\(opening.descriptor.size)",
                    ])
                }
            }
        }
        return passthrough.files.admit(opening.ino, backing: backing)
    }
}
