import Distribution
import Glibc
import Logging
import Storage
import Synchronization

/// A file being written into `repo/<name>/blobs/` of a read-write mount: an upload under
/// `_uploads/<uuid>` that becomes a blob when it is committed under a digest — at close for a
/// file created under its digest name, at rename for a temporary name (rsync's `.name.XXXXXX`).
final class PendingUpload: Sendable {
    enum Phase: Sendable {
        case writing
        case committed(Descriptor)
        /// Failed or cancelled: the upload is gone; the errno is what later calls report.
        case ended(Int32)
    }

    private struct State {
        var writer: UploadWriter?
        var phase: Phase = .writing
        var size: Int64 = 0
        var modified: Int64
    }

    let serial: UInt64
    let repository: Repository
    /// The directory inode and name the file was created under, for cache invalidation.
    let parent: UInt64
    let directory: String
    let name: String
    /// The digest the name gives, committed at close; nil for a temporary name.
    let digest: Digest?
    private let state: Mutex<State>
    private let logger: Logger

    init(serial: UInt64, repository: Repository, parent: UInt64, directory: String, name: String, digest: Digest?, logger: Logger)
        throws
    {
        let writer = try repository.blobs.create() as! UploadWriter
        // A sha384/sha512 name is checked while writing, so its commit needs no second pass.
        if let digest { writer.alsoDigest(digest.algorithm) }
        self.serial = serial
        self.repository = repository
        self.parent = parent
        self.directory = directory
        self.name = name
        self.digest = digest
        self.logger = logger
        state = Mutex(State(writer: writer, modified: Int64(time(nil))))
    }

    var phase: Phase { state.withLock { $0.phase } }
    var size: Int64 { state.withLock { $0.size } }
    var modified: Int64 { state.withLock { $0.modified } }

    /// Appends at the end; a write beyond the end fills the gap with zeros; a write behind it
    /// cannot be taken back (the bytes are already hashed) and is refused.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try state.withLock { state in
            if case .ended(let code) = state.phase {
                // Every later write says what ended the upload (ENOSPC stays ENOSPC).
                throw BlobError.io(operation: "write", path: "\(directory)/\(name)", errno: code)
            }
            guard case .writing = state.phase, let writer = state.writer else {
                throw BlobError.uploadClosed(writer(of: state))
            }
            if offset < state.size {
                logger.error("refusing a write behind the end of an upload", metadata: [
                    "file": "\(directory)/\(name)", "offset": "\(offset)", "size": "\(state.size)",
                ])
                throw BlobError.invalidLength(expected: state.size, actual: offset)
            }
            do {
                if offset > state.size {
                    let zeros = [UInt8](repeating: 0, count: Int(offset - state.size))
                    try zeros.withUnsafeBytes { try writer.write($0) }
                }
                try writer.write(bytes)
            } catch {
                // A full disk or an I/O error: the upload cannot become the blob any more, so it
                // goes now (freeing its space), and close reports the same error.
                state.phase = .ended(errnoValue(forStorage: error))
                state.writer = nil
                try? writer.cancel()
                logger.error("upload abandoned: \(error)", metadata: ["file": "\(directory)/\(name)"])
                throw error
            }
            state.size = offset + Int64(bytes.count)
            state.modified = Int64(time(nil))
        }
    }

    /// Extends the upload with zeros to `size` (`ftruncate` after a trailing hole, as cp and
    /// rsync do for sparse files); it cannot shrink.
    func extend(to size: Int64) throws {
        let current = self.size
        guard size > current else {
            if size == current { return }
            throw BlobError.invalidLength(expected: current, actual: size)
        }
        try [UInt8](repeating: 0, count: Int(size - current)).withUnsafeBytes { try write($0, at: current) }
    }

    /// At a close(2) that may not be the last (a shell's `>` closes a duplicate first): commits
    /// when the bytes so far have `digest`, and otherwise reports the mismatch but keeps the
    /// upload open for more writes; the last close (release) ends it.
    func commitIfComplete(as digest: Digest) throws {
        let matches: Bool? = state.withLock { state in
            guard case .writing = state.phase else { return true }  // committed, or ended: commit says which
            return state.writer?.contentMatches(digest)
        }
        if matches == false {
            throw BlobError.invalidDigest(digest, reason: "content does not match digest")
        }
        _ = try commit(as: digest)
    }

    /// Verifies and commits under `digest`; on failure the upload is removed.
    func commit(as digest: Digest) throws -> Descriptor {
        try state.withLock { state in
            switch state.phase {
            case .committed(let descriptor):
                if descriptor.digest == digest || self.digest == digest { return descriptor }
                throw BlobError.uploadClosed(writer(of: state))
            case .ended(let code):
                throw BlobError.io(operation: "commit", path: "\(directory)/\(name)", errno: code)
            case .writing:
                break
            }
            guard let writer = state.writer else { throw BlobError.uploadClosed("") }
            state.writer = nil
            do {
                let descriptor = try writer.commit(provisional: Descriptor(digest: digest, size: state.size))
                state.phase = .committed(descriptor)
                return descriptor
            } catch {
                state.phase = .ended(errnoValue(forStorage: error))
                logger.error("upload not committed: \(error)", metadata: ["file": "\(directory)/\(name)", "digest": "\(digest)"])
                throw error
            }
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
        let discarded: Int64? = state.withLock { state in
            guard case .writing = state.phase else { return nil }
            state.phase = .ended(ENOENT)
            if let writer = state.writer {
                do { try writer.cancel() } catch {
                    logger.error("could not remove a cancelled upload", metadata: ["upload": "\(writer.id)", "error": "\(error)"])
                }
            }
            state.writer = nil
            return state.size
        }
        guard let discarded, discarded > 0 else { return }
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

    private func writer(of state: State) -> String { state.writer?.id ?? "\(directory)/\(name)" }
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

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try state.withLock { state in
            guard offset == state.size else {
                state.failed = true
                throw BlobError.invalidLength(expected: state.size, actual: offset)
            }
            state.digester.update(bytes)
            state.size += Int64(bytes.count)
        }
    }

    /// Whether what was written is the blob itself.
    func check() throws {
        try state.withLock { state in
            guard !state.failed, state.size == descriptor.size, state.digester.digest() == descriptor.digest else {
                throw BlobError.invalidDigest(descriptor.digest, reason: "a blob cannot be rewritten with other content")
            }
        }
    }
}
