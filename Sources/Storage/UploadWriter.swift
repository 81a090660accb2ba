import Distribution
import Glibc
import Instrumentation
import Logging
import StorageDriver
import Synchronization

/// An upload under `_uploads/<uuid>/` laid out as the registry lays it out (`startedat`, `data`),
/// committed in the registry's order (docs/architecture.md, "What is on disk"): verify, move unless present, link,
/// remove the upload, record in the cache. No hash states are written; a resumed upload is
/// re-hashed at commit, so no foreign hash state is ever trusted.
///
/// The one state machine of an upload, for every caller (a mount's file being written, a
/// test, a demo store): its phase, its size, the first error that ended it, and positional
/// writes. A caller keeps only what it adds (a mount: the file's name and inode).
public final class UploadWriter: BlobWriter {
    /// Where an upload is in its life. `writing` is the only phase that takes bytes.
    public enum Phase: Sendable, Hashable {
        /// Taking bytes.
        case writing
        /// Closed by `close()` and kept on disk for a later `resume`; this writer takes no more bytes.
        case released
        /// A commit is moving the bytes into the blob store; writes are refused (`uploadClosed`).
        case committing
        /// Stored and linked under the descriptor; the upload directory is gone.
        case committed(Descriptor)
        /// A write or a commit failed and the upload was removed: every later write and commit
        /// reports this same error (a full disk stays ENOSPC at close).
        case failed(BlobError)
        /// Abandoned and removed by `cancel`.
        case cancelled
    }

    private struct State {
        var phase: Phase = .writing
        /// The upload's `data` file; nil once the phase left `writing`.
        var file: (any DriverFileWriter)?
        /// Hashes every byte written, from 0, while the writer saw the whole upload.
        var digester: Digester
        /// Extra digesters for provisional algorithms other than sha256, fed alongside.
        var verifiers: [DigestAlgorithm: Digester]
        /// Bytes in the upload: where the next append lands.
        var size: Int64
        /// Whether the digesters cover the upload from offset 0.
        var inSync: Bool
        /// The digest the upload was committed under, for a repeated commit.
        var committedAs: Digest?
    }

    public let uploadID: UploadID
    public let startedAt: UploadTimestamp
    private let store: LinkedBlobStore
    // Lock order: `commitTurn`, then `state`, then the driver file writer's own lock (taken
    // inside `DriverFileWriter.write` and `commit`). `state` is held only around a state change
    // and the `pwrite` of a write (the bytes must land in the order they are hashed and counted),
    // never across a commit's fsync, renames, link writes or removal of the upload.
    /// Held by a commit from start to end, across its disk I/O, and taken by a cancel before it
    /// changes the phase: a second commit of the same upload (a second close of the same file)
    /// or a cancel (unmount) waits for the first commit's outcome and answers from it, where a
    /// write is refused at once. Writes and size or phase reads never take it.
    private let commitTurn = Mutex(())
    /// The phase, the size, the digests and the open `data` file.
    private let state: Mutex<State>

    public var id: String { uploadID.value }
    public var size: Int64 { state.withLock { $0.size } }
    public var phase: Phase { state.withLock { $0.phase } }

    private init(
        id: UploadID, startedAt: UploadTimestamp, store: LinkedBlobStore, file: any DriverFileWriter, inSync: Bool,
        alsoDigest: DigestAlgorithm?
    ) {
        self.uploadID = id
        self.startedAt = startedAt
        self.store = store
        var verifiers: [DigestAlgorithm: Digester] = [:]
        if let alsoDigest, alsoDigest != .sha256, inSync { verifiers[alsoDigest] = Digester(alsoDigest) }
        self.state = Mutex(State(file: file, digester: Digester(.sha256), verifiers: verifiers, size: file.size, inSync: inSync))
    }

    deinit { state.withLock { $0.file?.close() } }

    /// Starts a new upload: `startedat`, then an empty `data`, as the registry does.
    static func create(in store: LinkedBlobStore, alsoDigest: DigestAlgorithm?) throws(BlobError) -> UploadWriter {
        let id = UploadID.random()
        let startedAt = UploadTimestamp.now()
        let name = store.repository
        do throws(StorageDriverError) {
            try store.driver.putContent(PathMapper.path(.uploadStartedAt(name, id)), Array(startedAt.rfc3339.utf8))
            let file = try store.driver.writer(PathMapper.path(.uploadData(name, id)), append: false)
            return UploadWriter(id: id, startedAt: startedAt, store: store, file: file, inSync: true, alsoDigest: alsoDigest)
        } catch {
            _ = try? store.driver.delete(PathMapper.path(.upload(name, id)))
            throw error.blobError
        }
    }

    /// Reopens an upload for appending; unknown without `startedat`.
    static func resume(_ id: UploadID, in store: LinkedBlobStore) throws(BlobError) -> UploadWriter {
        let name = store.repository
        let startedAtPath = PathMapper.path(.uploadStartedAt(name, id))
        let text: [UInt8]
        do throws(StorageDriverError) {
            text = try store.driver.getContent(startedAtPath, limit: 4096)
        } catch .pathNotFound {
            throw .uploadUnknown(id.value)
        } catch {
            throw error.blobError
        }
        guard let startedAt = UploadTimestamp(rfc3339: String(decoding: text, as: UTF8.self)) else {
            throw .corruptUpload(id: id.value, reason: "startedat is not an RFC 3339 time")
        }
        let file: any DriverFileWriter
        do throws(StorageDriverError) {
            file = try store.driver.writer(PathMapper.path(.uploadData(name, id)), append: true)
        } catch .isDirectory {
            throw .corruptUpload(id: id.value, reason: "data is a directory")
        } catch {
            throw error.blobError
        }
        return UploadWriter(id: id, startedAt: startedAt, store: store, file: file, inSync: file.size == 0, alsoDigest: nil)
    }

    /// Whether the bytes so far have `digest`, from the digests computed while writing; nil when
    /// the writer did not see the whole upload (a resume) or does not hash that algorithm.
    public func contentMatches(_ digest: Digest) -> Bool? {
        state.withLock { state in
            guard state.inSync else { return nil }
            if digest.algorithm == .sha256 { return state.digester.digest() == digest }
            return state.verifiers[digest.algorithm].map { $0.digest() == digest }
        }
    }

    /// The bytes written so far, read back from the upload's `data` file, for an upload whose
    /// content decides what it becomes (a file in a mount's `tags/`: `TagFileContent`). At most
    /// `limit` bytes (a larger upload is EFBIG). The read runs without a lock held; the bytes
    /// must hash to what the writes hashed, so a write that lands meanwhile, or a `data` file
    /// changed behind the writer's back, is `corruptUpload`, never a mixed read.
    public func writtenBytes(limit: Int) throws(BlobError) -> [UInt8] {
        let written = try state.withLock { state throws(BlobError) -> (size: Int64, digest: Digest?) in
            switch state.phase {
            case .writing: return (state.size, state.inSync ? state.digester.digest() : nil)
            case .failed(let error): throw error
            case .cancelled: throw .uploadUnknown(id)
            case .released, .committing, .committed: throw .uploadClosed(id)
            }
        }
        let dataPath = PathMapper.path(.uploadData(store.repository, uploadID))
        guard written.size <= Int64(limit) else {
            throw .io(operation: "read back an upload of \(written.size) bytes (at most \(limit))", path: dataPath.value, errno: EFBIG)
        }
        if written.size == 0 { return [] }
        let bytes = try driverCall { () throws(StorageDriverError) in try store.driver.getContent(dataPath, limit: limit) }
        guard Int64(bytes.count) == written.size, written.digest.map({ Digester.digest(of: bytes) == $0 }) ?? true else {
            throw .corruptUpload(id: id, reason: "data is not what was written (\(bytes.count) bytes read back, \(written.size) written)")
        }
        return bytes
    }

    // MARK: - Writes

    /// Appends at the end of the upload.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(BlobError) {
        try write(bytes, at: nil)
    }

    /// Writes at `offset`, as a file written by `pwrite` asks: at the end appends; beyond it, the
    /// gap is filled with zeros first; behind it is refused with `invalidLength` (the bytes there
    /// are hashed already and cannot be taken back), and the upload goes on.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(BlobError) {
        try write(bytes, at: Optional(offset))
    }

    /// Extends the upload with zeros to `size` (`ftruncate` after a trailing hole, as cp and rsync
    /// do for sparse files). The size is compared first, in any phase: the size the upload has
    /// already is no change, and a smaller one is `invalidLength` (it cannot shrink), even after
    /// a commit.
    public func extend(to size: Int64) throws(BlobError) {
        try write(UnsafeRawBufferPointer(start: nil, count: 0), at: size, extending: true)
    }

    /// One write under the state lock; nil `offset` appends. A failure of the bytes themselves
    /// (a full disk, an I/O error) ends the upload: it is removed, freeing its space, since its
    /// digests no longer describe what is on disk.
    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64?, extending: Bool = false) throws(BlobError) {
        let ended = try state.withLock { state throws(BlobError) -> (error: BlobError, file: any DriverFileWriter)? in
            let start = offset ?? state.size
            if extending {
                if start == state.size { return nil }
                if start < state.size { throw .invalidLength(expected: state.size, actual: start) }
            }
            switch state.phase {
            case .writing: break
            case .failed(let error): throw error
            case .cancelled: throw .uploadUnknown(id)
            case .released, .committing, .committed: throw .uploadClosed(id)
            }
            guard let file = state.file else { throw .uploadClosed(id) }
            if start < state.size { throw .invalidLength(expected: state.size, actual: start) }
            do throws(BlobError) {
                if start > state.size { try Self.fillWithZeros(&state, upTo: start, file) }
                try Self.append(&state, bytes, file)
                return nil
            } catch {
                state.phase = .failed(error)
                state.file = nil
                return (error, file)
            }
        }
        guard let ended else { return }
        ended.file.close()
        removeUploadQuietly()
        throw ended.error
    }

    /// Appends `bytes` to the file, then into the digests and the size.
    private static func append(_ state: inout State, _ bytes: UnsafeRawBufferPointer, _ file: any DriverFileWriter) throws(BlobError) {
        guard bytes.count > 0 else { return }
        try driverCall { () throws(StorageDriverError) in try file.write(bytes) }
        state.size += Int64(bytes.count)
        if state.inSync {
            state.digester.update(bytes)
            for verifier in state.verifiers.values { verifier.update(bytes) }
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 1 << 16)

    /// Appends zeros up to `end`, a block at a time (a hole may be gigabytes).
    private static func fillWithZeros(_ state: inout State, upTo end: Int64, _ file: any DriverFileWriter) throws(BlobError) {
        while state.size < end {
            let count = Int(min(Int64(zeros.count), end - state.size))
            // `withUnsafeBytes` rethrows untyped: the append's own error comes back as a `Result`.
            try zeros.withUnsafeBytes { zeros in
                Result { () throws(BlobError) in try append(&state, UnsafeRawBufferPointer(rebasing: zeros[..<count]), file) }
            }.get()
        }
    }

    // MARK: - Commit, cancel, close

    /// Verifies the content against `provisional`, stores it under its canonical digest, links
    /// both digests and removes the upload; on failure the upload is removed and the writer is
    /// `failed` with that error. The phase is `committing` while the disk work runs, outside the
    /// state lock: a `getattr` (size, phase) never waits for the fsyncs. A commit of a committed
    /// upload under its digest or canonical digest returns the descriptor again (a second close
    /// of the same file); under another digest it is `uploadClosed`.
    public func commit(provisional: Descriptor) throws(BlobError) -> Descriptor {
        try commitTurn.withLock { _ throws(BlobError) in try commitInTurn(provisional) }
    }

    private func commitInTurn(_ provisional: Descriptor) throws(BlobError) -> Descriptor {
        let start = try state.withLock { state throws(BlobError) -> CommitStart in
            switch state.phase {
            case .writing: break
            case .committed(let descriptor) where descriptor.digest == provisional.digest || state.committedAs == provisional.digest:
                return .already(descriptor)
            case .failed(let error): throw error
            case .cancelled: throw .uploadUnknown(id)
            case .released, .committing, .committed: throw .uploadClosed(id)
            }
            guard let file = state.file else { throw .uploadClosed(id) }
            state.phase = .committing
            state.file = nil
            return .written(file, Written(state, provisional: provisional.digest.algorithm))
        }
        let (file, written): (any DriverFileWriter, Written)
        switch start {
        case .already(let descriptor): return descriptor
        case .written(let takenFile, let taken): (file, written) = (takenFile, taken)
        }
        let canonical: Descriptor
        do {
            canonical = try storeBlob(file, written, provisional: provisional)
        } catch {
            removeUploadQuietly()
            state.withLock { $0.phase = .failed(error) }
            BlobfsMetrics.current?.uploadRefused(Self.refusal(error))
            throw error
        }
        removeUploadQuietly()
        BlobfsMetrics.current?.uploadsCommitted.increment()
        state.withLock { state in
            state.phase = .committed(canonical)
            state.committedAs = provisional.digest
        }
        // The cache learns the canonical digest only, as the registry does.
        try? store.accessController.setDescriptor(canonical.digest, canonical)
        return canonical
    }

    /// What a commit found when it took the upload over.
    private enum CommitStart: Sendable {
        case written(any DriverFileWriter, Written)
        case already(Descriptor)
    }

    /// The upload as its writes left it, taken under the lock at the start of a commit.
    private struct Written: Sendable {
        var size: Int64
        /// The sha256 digest computed while writing, when the writer saw every byte.
        var canonical: Digest?
        /// The provisional algorithm's digest computed while writing, when there is one.
        var provisional: Digest?

        init(_ state: State, provisional algorithm: DigestAlgorithm) {
            size = state.size
            canonical = state.inSync ? state.digester.digest() : nil
            provisional = algorithm == .sha256 ? canonical : state.inSync ? state.verifiers[algorithm]?.digest() : nil
        }
    }

    /// The commit's disk work, with no lock held: durable data, checks, move, links.
    private func storeBlob(_ file: any DriverFileWriter, _ written: Written, provisional: Descriptor) throws(BlobError) -> Descriptor {
        do {
            defer { file.close() }
            try driverCall { () throws(StorageDriverError) in try file.commit() }
        }
        let canonicalDigest = try checkContent(written, against: provisional)
        let canonical = Descriptor(
            digest: canonicalDigest, size: written.size, mediaType: provisional.mediaType.isEmpty ? Descriptor.octetStream : provisional.mediaType)
        try moveUnlessPresent(canonical)
        try store.link(canonical, aliases: [provisional.digest])
        return canonical
    }

    /// Abandons the upload and removes it; idempotent, and a no-op once committed or failed. A
    /// cancel during a commit waits for it, and is then a no-op.
    public func cancel() throws(BlobError) {
        _ = try cancelUpload(reportingErrors: true)
    }

    /// Cancels as `cancel` does, for a caller with nobody to report a failed removal to (it is
    /// logged): the bytes thrown away, or nil when there was nothing to cancel.
    @discardableResult
    public func abandon() -> Int64? {
        (try? cancelUpload(reportingErrors: false)) ?? nil
    }

    private func cancelUpload(reportingErrors: Bool) throws(BlobError) -> Int64? {
        let discarded: Int64? = commitTurn.withLock { _ in
            state.withLock { state in
                switch state.phase {
                case .writing, .released: break
                case .committing, .committed, .failed, .cancelled: return nil
                }
                state.file?.close()
                state.file = nil
                state.phase = .cancelled
                return state.size
            }
        }
        guard let discarded else { return nil }
        try removeUpload(reportingErrors: reportingErrors)
        return discarded
    }

    /// The metrics' reason for a refused commit.
    private static func refusal(_ error: BlobError) -> UploadRefusal {
        switch error {
        case .invalidDigest: .digestMismatch
        case .invalidLength: .sizeMismatch
        case .corruptUpload, .changed: .corruptUpload
        case .io: .storageError
        default: .other
        }
    }

    /// Releases the file and keeps the upload on disk for a later `resume`.
    public func close() throws(BlobError) {
        state.withLock { state in
            state.file?.close()
            state.file = nil
            if state.phase == .writing { state.phase = .released }
        }
    }

    // MARK: - Commit steps

    /// Size and digest checks; re-hashes the data when the writer did not see all of it. Returns
    /// the canonical (sha256) digest.
    private func checkContent(_ written: Written, against provisional: Descriptor) throws(BlobError) -> Digest {
        let dataPath = PathMapper.path(.uploadData(store.repository, uploadID))
        let onDisk = try driverCall { () throws(StorageDriverError) in try store.driver.stat(dataPath) }
        guard onDisk.kind == .file else { throw .corruptUpload(id: id, reason: "data is not a regular file") }
        guard onDisk.size == written.size else {
            throw .corruptUpload(id: id, reason: "data is \(onDisk.size) bytes on disk, \(written.size) written")
        }
        if provisional.size > 0, provisional.size != written.size {
            throw .invalidLength(expected: provisional.size, actual: written.size)
        }
        let canonical: Digest
        let check: Digest
        if let writtenCanonical = written.canonical, let writtenProvisional = written.provisional {
            (canonical, check) = (writtenCanonical, writtenProvisional)
        } else {
            (canonical, check) = try rehash(dataPath, size: written.size, provisional: provisional.digest.algorithm)
        }
        guard check == provisional.digest else { throw .invalidDigest(provisional.digest, reason: "content does not match digest") }
        return canonical
    }

    /// A full pass over the data (the one whole-file hash loop, `WholeFileHasher`): sha256 for the
    /// canonical digest, plus the provisional algorithm.
    private func rehash(_ dataPath: DriverPath, size: Int64, provisional wanted: DigestAlgorithm) throws(BlobError)
        -> (canonical: Digest, provisional: Digest)
    {
        let algorithms: [DigestAlgorithm] = wanted == .sha256 ? [.sha256] : [.sha256, wanted]
        let reader = try driverCall { () throws(StorageDriverError) in try store.driver.reader(dataPath) }
        let hash: WholeFileHasher.Hash
        do {
            hash = try WholeFileHasher().hash(reader, size: size, algorithms: algorithms)
        } catch {
            throw error.error
        }
        guard hash.size == size else {
            let change = hash.size < size ? "shrank" : "grew"
            throw .corruptUpload(id: id, reason: "data \(change) while it was verified")
        }
        return (hash.digests[0], hash.digests[algorithms.count - 1])
    }

    /// Moves the upload into `blobs/` unless the same blob is already there. A file of another
    /// size under that digest is corrupt by definition and is replaced by the verified bytes.
    private func moveUnlessPresent(_ canonical: Descriptor) throws(BlobError) {
        let blobPath = PathMapper.path(.blobData(canonical.digest))
        let existing: FileInfo? = try driverCall { () throws(StorageDriverError) in
            do throws(StorageDriverError) { return try store.driver.stat(blobPath) } catch .pathNotFound { return nil }
        }
        if let existing, existing.kind == .file, existing.size == canonical.size { return }
        try driverCall { () throws(StorageDriverError) in
            try store.driver.move(from: PathMapper.path(.uploadData(store.repository, uploadID)), to: blobPath)
        }
    }

    private func removeUpload(reportingErrors: Bool) throws(BlobError) {
        do throws(StorageDriverError) {
            try store.driver.delete(PathMapper.path(.upload(store.repository, uploadID)))
        } catch .pathNotFound {
        } catch {
            store.logger.error("could not remove upload", metadata: ["upload": "\(id)", "error": "\(error)"])
            if reportingErrors { throw error.blobError }
        }
    }

    private func removeUploadQuietly() {
        try? removeUpload(reportingErrors: false)
    }
}
