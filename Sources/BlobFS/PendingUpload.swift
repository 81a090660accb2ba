import Distribution
import Glibc
import Instrumentation
import Logging
import Storage
import Synchronization

/// A file being written into `repo/<name>/blobs/` of a read-write mount: an upload under
/// `_uploads/<uuid>` that becomes a blob when it is committed under a digest — at close for a
/// file created under its digest name, at rename for a temporary name (rsync's `.name.XXXXXX`).
///
/// The upload itself — its phase, size, first error and positional writes — is the storage
/// layer's `UploadWriter`; this keeps only what the filesystem adds: the inode serial, the
/// directory and name it was created under, the digest the name gives, the modification time
/// getattr reports, and why a cancel throws bytes away.
final class PendingUpload: Sendable {
    enum Phase: Sendable {
        /// Taking bytes, or being committed (a getattr then still sees the upload's size).
        case writing
        case committed(Descriptor)
        /// Failed or cancelled: the upload is gone; the error is what later calls report
        /// (a full disk stays ENOSPC; a cancelled upload is `uploadUnknown`, ENOENT).
        case ended(BlobError)
    }

    let serial: UInt64
    let repository: Repository
    /// The directory inode and name the file was created under, for cache invalidation.
    let parent: UInt64
    let directory: String
    let name: String
    /// The digest the name gives, committed at close; nil for a temporary name.
    let digest: Digest?
    /// A manifest written into `manifests/` (committed as a revision, at most 4 MiB), not a blob.
    let isManifest: Bool
    private let writer: UploadWriter
    /// When the last write landed, seconds since the epoch: the file's mtime for getattr. Its
    /// own lock, taken after a write returns and never together with the writer's.
    private let lastWrite: Mutex<Int64>
    private let logger: Logger

    init(
        serial: UInt64, repository: Repository, parent: UInt64, directory: String, name: String, digest: Digest?, isManifest: Bool = false,
        logger: Logger
    )
        throws(BlobError)
    {
        // A sha384/sha512 name is checked while writing, so its commit needs no second pass.
        writer = isManifest ? try repository.manifests.createUpload() : try repository.blobs.createUpload(alsoDigest: digest?.algorithm)
        self.isManifest = isManifest
        self.serial = serial
        self.repository = repository
        self.parent = parent
        self.directory = directory
        self.name = name
        self.digest = digest
        self.logger = logger
        lastWrite = Mutex(Int64(time(nil)))
    }

    var phase: Phase {
        switch writer.phase {
        case .writing, .released, .committing: .writing
        case .committed(let descriptor): .committed(descriptor)
        case .failed(let error): .ended(error)
        case .cancelled: .ended(.uploadUnknown(writer.id))
        }
    }

    var size: Int64 { writer.size }

    /// A manifest is at most the registry's 4 MiB: a larger one could never be served (EFBIG).
    private func checkManifestSize(_ end: Int64) throws(BlobError) {
        guard isManifest, end > Int64(ManifestStore.sizeLimit) else { return }
        throw .io(operation: "write a manifest over the registry's 4 MiB limit", path: "\(directory)/\(name)", errno: EFBIG)
    }

    /// Whether the writer still takes bytes: a failure seen after it was, is this call's own.
    private var isWriting: Bool { writer.phase == .writing }
    var modified: Int64 { lastWrite.withLock { $0 } }

    /// Appends at the end; a write beyond the end fills the gap with zeros; a write behind it
    /// cannot be taken back (the bytes are already hashed) and is refused.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(BlobError) {
        try checkManifestSize(offset + Int64(bytes.count))
        let wasWriting = isWriting
        do {
            try writer.write(bytes, at: offset)
        } catch .invalidLength(let size, let offset) {
            logger.error("refusing a write behind the end of an upload", metadata: [
                "file": "\(directory)/\(name)", "offset": "\(offset)", "size": "\(size)",
            ])
            throw .invalidLength(expected: size, actual: offset)
        } catch {
            if wasWriting, case .failed = writer.phase {
                // A full disk or an I/O error: the writer removed the upload (freeing its
                // space), and close reports the same error.
                logger.error("upload abandoned: \(error)", metadata: ["file": "\(directory)/\(name)"])
            }
            throw error
        }
        lastWrite.withLock { $0 = Int64(time(nil)) }
    }

    /// Extends the upload with zeros to `size` (`ftruncate` after a trailing hole, as cp and
    /// rsync do for sparse files); it cannot shrink.
    func extend(to size: Int64) throws(BlobError) {
        try checkManifestSize(size)
        let before = writer.size
        try writer.extend(to: size)
        if size != before { lastWrite.withLock { $0 = Int64(time(nil)) } }
    }

    /// At a close(2) that may not be the last (a shell's `>` closes a duplicate first): commits
    /// when the bytes so far have `digest`, and otherwise reports the mismatch but keeps the
    /// upload open for more writes; the last close (release) ends it.
    func commitIfComplete(as digest: Digest) throws(BlobError) {
        // Committed or ended: commit says which.
        if case .writing = writer.phase, writer.contentMatches(digest) == false {
            throw .invalidDigest(digest, reason: "content does not match digest")
        }
        _ = try commit(as: digest)
    }

    /// Verifies and commits under `digest`; on failure the upload is removed. A second commit
    /// under the same digest (a second close) returns the first one's descriptor.
    func commit(as digest: Digest) throws(BlobError) -> Descriptor {
        let wasWriting = isWriting
        do {
            // Size 0: whatever was written when the commit takes the upload over (a concurrent
            // write is refused from then on).
            return try writer.commit(provisional: Descriptor(digest: digest, size: 0))
        } catch {
            if wasWriting, case .failed = writer.phase {
                logger.error("upload not committed: \(error)", metadata: ["file": "\(directory)/\(name)", "digest": "\(digest)"])
            }
            throw error
        }
    }

    /// Why an upload is abandoned: it decides whether the bytes thrown away deserve a warning.
    enum CancelReason: Sendable {
        /// unlink of a temporary name: what the writer asked for (rsync, after a failed transfer).
        case unlinked
        /// The kernel could not be told about the new file (an interrupted create): nothing written.
        case notCreated
        /// The last close of a file named by a digest its content never matched.
        case lastCloseWithoutMatch
        /// Unmount or a stop signal while the upload was still being written, or a temporary
        /// name never renamed to its digest.
        case unmount
    }

    /// Abandons the upload; idempotent. Bytes thrown away without the writer asking for it are
    /// logged at warning level, with the name, the repository and the size, so that a restore
    /// that lost data always leaves a line in the log (an empty upload loses nothing).
    func cancel(_ reason: CancelReason) {
        guard let discarded = writer.abandon() else { return }
        // Counted here, where the reason is known: a digest its content never matched is a refusal.
        if reason == .lastCloseWithoutMatch {
            BlobfsMetrics.current?.uploadRefused(.digestMismatch)
        } else {
            BlobfsMetrics.current?.uploadsCancelled.increment()
        }
        guard discarded > 0 else { return }
        let why: String
        switch reason {
        case .unlinked, .notCreated: return
        case .lastCloseWithoutMatch: why = "at its last close: its content never matched the digest in its name"
        case .unmount where digest == nil: why = "at unmount: it was never renamed to its digest"
        case .unmount: why = "at unmount: it was still being written"
        }
        logger.warning("upload discarded \(why); nothing was stored", metadata: [
            "name": "\(name)", "repository": "\(repository.name)", "bytes": "\(discarded)",
        ])
    }
}

/// A rewrite of an existing blob through `open(O_TRUNC)`: blobs never change, so the bytes are
/// only checked against the blob's digest, and close fails with EIO if they differ.
final class IdenticalRewrite: Sendable {
    private struct State {
        var digester: Digester
        var size: Int64 = 0
        var failed = false
    }

    let descriptor: Descriptor
    private let state: Mutex<State>

    init(descriptor: Descriptor) {
        self.descriptor = descriptor
        state = Mutex(State(digester: Digester(descriptor.digest.algorithm)))
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(BlobError) {
        try state.withLock { (state) throws(BlobError) in
            guard offset == state.size else {
                state.failed = true
                throw .invalidLength(expected: state.size, actual: offset)
            }
            state.digester.update(bytes)
            state.size += Int64(bytes.count)
        }
    }

    /// Whether what was written is the blob itself.
    func check() throws(BlobError) {
        try state.withLock { (state) throws(BlobError) in
            guard !state.failed, state.size == descriptor.size, state.digester.digest() == descriptor.digest else {
                throw .invalidDigest(descriptor.digest, reason: "a blob cannot be rewritten with other content")
            }
        }
    }
}
