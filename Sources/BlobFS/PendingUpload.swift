import Distribution
import Glibc
import Instrumentation
import Logging
import Storage
import Synchronization

/// A file being written into `repo/<name>/blobs/` of a read-write mount: an upload under
/// `_uploads/<uuid>` that becomes a blob when it is committed under a digest — at close for a
/// file created under its digest name, at rename for a temporary name (rsync's `.name.XXXXXX`).
/// In `manifests/` it becomes a revision the same way; in `tags/` it is never committed: its
/// bytes, read back, decide which tag it makes (`TagFileContent`), and it is then dropped.
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
    /// The digest the name gives, committed at close; nil for a temporary name and in `tags/`.
    let digest: Digest?
    let kind: Kind
    private let writer: UploadWriter
    /// When the last write landed, seconds since the epoch: the file's mtime for getattr. Its
    /// own lock, taken after a write returns and never together with the writer's.
    private let lastWrite: Mutex<Int64>
    private let logger: Logger

    /// What the file becomes.
    enum Kind: Sendable, Equatable {
        /// A blob, in `blobs/`.
        case blob
        /// A manifest revision, in `manifests/` (at most 4 MiB).
        case manifest
        /// A tag, in `tags/`, from what the file holds (at most 4 MiB: a manifest's bytes, a
        /// digest, or nothing yet); `tag` is the tag its name gives, nil for rsync's temporary name.
        case tagFile(Tag?)
    }

    init(
        serial: UInt64, repository: Repository, parent: UInt64, directory: String, name: String, digest: Digest?, kind: Kind = .blob,
        logger: Logger
    )
        throws(BlobError)
    {
        // A sha384/sha512 name is checked while writing, so its commit needs no second pass.
        writer = kind == .blob ? try repository.blobs.createUpload(alsoDigest: digest?.algorithm) : try repository.manifests.createUpload()
        self.kind = kind
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

    /// A manifest (or a tag file, which may hold one) is at most the registry's 4 MiB: a larger
    /// one could never be served (EFBIG).
    private func checkManifestSize(_ end: Int64) throws(BlobError) {
        guard kind != .blob, end > Int64(ManifestStore.sizeLimit) else { return }
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

    /// The tag a file in `tags/` is named after; nil for rsync's temporary name and outside `tags/`.
    var tag: Tag? {
        if case .tagFile(let tag) = kind { tag } else { nil }
    }

    /// What a file in `tags/` holds so far, read back from its upload (at most 4 MiB).
    func writtenBytes() throws(BlobError) -> [UInt8] {
        try writer.writtenBytes(limit: ManifestStore.sizeLimit)
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
        /// A file in `tags/` that made its tag: its bytes are in the store as the tag (and the
        /// manifest), nothing is lost.
        case becameTag
        /// A file in `tags/` whose content cannot be a tag, at its last close or its rename.
        case notATag
    }

    /// Abandons the upload; idempotent. Bytes thrown away without the writer asking for it are
    /// logged at warning level, with the name, the repository and the size, so that a restore
    /// that lost data always leaves a line in the log (an empty upload loses nothing).
    func cancel(_ reason: CancelReason) {
        guard let discarded = writer.abandon() else { return }
        // Counted here, where the reason is known: a digest its content never matched is a refusal;
        // a tag file whose bytes became a tag was neither refused nor cancelled.
        switch reason {
        case .lastCloseWithoutMatch: BlobfsMetrics.current?.uploadRefused(.digestMismatch)
        case .becameTag: break
        default: BlobfsMetrics.current?.uploadsCancelled.increment()
        }
        if case .tagFile = kind {
            return tagFileCancelled(reason, discarded: discarded)
        }
        guard discarded > 0 else { return }
        let why: String
        switch reason {
        case .unlinked, .notCreated, .becameTag, .notATag: return
        case .lastCloseWithoutMatch: why = "at its last close: its content never matched the digest in its name"
        case .unmount where digest == nil: why = "at unmount: it was never renamed to its digest"
        case .unmount: why = "at unmount: it was still being written"
        }
        logger.warning("upload discarded \(why); nothing was stored", metadata: [
            "name": "\(name)", "repository": "\(repository.name)", "bytes": "\(discarded)",
        ])
    }

    /// A file in `tags/` that did not make its tag is a tag a restore lost: a warning, also for
    /// GNU tar's empty placeholder still there at unmount (its link never came).
    private func tagFileCancelled(_ reason: CancelReason, discarded: Int64) {
        let why: String
        switch reason {
        case .unlinked, .notCreated, .becameTag, .lastCloseWithoutMatch: return
        case .notATag: why = "its content cannot be a tag"
        case .unmount where kind == .tagFile(nil): why = "at unmount: it was never renamed to its tag"
        case .unmount where discarded == 0: why = "at unmount: it was an empty placeholder that no symbolic link replaced"
        case .unmount: why = "at unmount: what it held was not a tag"
        }
        logger.warning("tag file discarded, \(why); no tag was stored", metadata: [
            "name": "\(directory)/\(name)", "repository": "\(repository.name)", "bytes": "\(discarded)",
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
