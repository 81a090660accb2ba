import Distribution
import Glibc
import Logging
import StorageDriver
import Synchronization

/// An upload under `_uploads/<uuid>/` laid out as the registry lays it out (`startedat`, `data`),
/// committed in the registry's order (docs/architecture.md, "What is on disk"): verify, move unless present, link,
/// remove the upload, record in the cache. No hash states are written; a resumed upload is
/// re-hashed at commit, so no foreign hash state is ever trusted.
public final class UploadWriter: BlobWriter {
    private enum Phase { case open, closed, committed, cancelled }

    private struct State {
        var phase: Phase
        var file: (any DriverFileWriter)?
        /// Hashes every byte written, from 0, while the writer saw the whole upload.
        var digester: Digester
        /// Extra digesters for provisional algorithms other than sha256, fed alongside.
        var verifiers: [DigestAlgorithm: Digester]
        var size: Int64
        /// Whether the digesters cover the upload from offset 0.
        var inSync: Bool
    }

    public let uploadID: UploadID
    public let startedAt: UploadTimestamp
    private let store: LinkedBlobStore
    private let state: Mutex<State>

    public var id: String { uploadID.value }
    public var size: Int64 { state.withLock { $0.size } }

    private init(id: UploadID, startedAt: UploadTimestamp, store: LinkedBlobStore, file: any DriverFileWriter, inSync: Bool) {
        self.uploadID = id
        self.startedAt = startedAt
        self.store = store
        self.state = Mutex(
            State(phase: .open, file: file, digester: Digester(.sha256), verifiers: [:], size: file.size, inSync: inSync))
    }

    deinit { state.withLock { $0.file?.close() } }

    /// Starts a new upload: `startedat`, then an empty `data`, as the registry does.
    static func create(in store: LinkedBlobStore) throws -> UploadWriter {
        let id = UploadID.random()
        let startedAt = UploadTimestamp.now()
        let name = store.repository
        do {
            try driverCall { try store.driver.putContent(PathMapper.path(.uploadStartedAt(name, id)), Array(startedAt.rfc3339.utf8)) }
            let file = try driverCall { try store.driver.writer(PathMapper.path(.uploadData(name, id)), append: false) }
            return UploadWriter(id: id, startedAt: startedAt, store: store, file: file, inSync: true)
        } catch {
            _ = try? store.driver.delete(PathMapper.path(.upload(name, id)))
            throw error
        }
    }

    /// Reopens an upload for appending; unknown without `startedat`.
    static func resume(_ id: UploadID, in store: LinkedBlobStore) throws -> UploadWriter {
        let name = store.repository
        let startedAtPath = PathMapper.path(.uploadStartedAt(name, id))
        let text: [UInt8]
        do {
            text = try store.driver.getContent(startedAtPath, limit: 4096)
        } catch StorageDriverError.pathNotFound {
            throw BlobError.uploadUnknown(id.value)
        } catch let error as StorageDriverError {
            throw error.blobError
        }
        guard let startedAt = UploadTimestamp(rfc3339: String(decoding: text, as: UTF8.self)) else {
            throw BlobError.corruptUpload(id: id.value, reason: "startedat is not an RFC 3339 time")
        }
        let file: any DriverFileWriter
        do {
            file = try store.driver.writer(PathMapper.path(.uploadData(name, id)), append: true)
        } catch StorageDriverError.isDirectory {
            throw BlobError.corruptUpload(id: id.value, reason: "data is a directory")
        } catch let error as StorageDriverError {
            throw error.blobError
        }
        return UploadWriter(id: id, startedAt: startedAt, store: store, file: file, inSync: file.size == 0)
    }

    /// Hashes the bytes for `algorithm` too while they are written, so that committing under a
    /// sha384/sha512 name needs no second pass. Call before the first write.
    public func alsoDigest(_ algorithm: DigestAlgorithm) {
        state.withLock { state in
            guard algorithm != .sha256, state.verifiers[algorithm] == nil, state.size == 0 else { return }
            state.verifiers[algorithm] = Digester(algorithm)
        }
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

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try state.withLock { state in
            guard state.phase == .open, let file = state.file else { throw BlobError.uploadClosed(id) }
            // Bytes go to the file first, then into the digests.
            try driverCall { try file.write(bytes) }
            state.size += Int64(bytes.count)
            if state.inSync {
                state.digester.update(bytes)
                for verifier in state.verifiers.values { verifier.update(bytes) }
            }
        }
    }

    public func commit(provisional: Descriptor) throws -> Descriptor {
        let (size, canonicalDigest, provisionalVerified) = try state.withLock { state in
            guard state.phase == .open, let file = state.file else { throw BlobError.uploadClosed(id) }
            state.phase = .closed
            state.file = nil
            defer { file.close() }
            do {
                try driverCall { try file.commit() }
                let verdict = try verify(state, provisional: provisional)
                return (state.size, verdict.canonical, verdict.verified)
            } catch {
                removeUploadQuietly()
                state.phase = .cancelled
                throw error
            }
        }
        guard provisionalVerified else {
            removeUploadQuietly()
            state.withLock { $0.phase = .cancelled }
            throw BlobError.invalidDigest(provisional.digest, reason: "content does not match digest")
        }
        let canonical = Descriptor(
            digest: canonicalDigest, size: size, mediaType: provisional.mediaType.isEmpty ? Descriptor.octetStream : provisional.mediaType)
        do {
            try moveUnlessPresent(canonical)
            try store.link(canonical, aliases: [provisional.digest])
        } catch {
            removeUploadQuietly()
            state.withLock { $0.phase = .cancelled }
            throw error
        }
        removeUploadQuietly()
        state.withLock { $0.phase = .committed }
        // The cache learns the canonical digest only, as the registry does.
        try? store.accessController.setDescriptor(canonical.digest, canonical)
        return canonical
    }

    public func cancel() throws {
        let wasOpen = state.withLock { state in
            guard state.phase == .open || state.phase == .closed else { return false }
            state.file?.close()
            state.file = nil
            state.phase = .cancelled
            return true
        }
        if wasOpen { try removeUpload(reportingErrors: true) }
    }

    public func close() throws {
        state.withLock { state in
            state.file?.close()
            state.file = nil
            if state.phase == .open { state.phase = .closed }
        }
    }

    // MARK: - Commit steps

    /// Size and digest checks; re-hashes the data when the writer did not see all of it.
    private func verify(_ state: State, provisional: Descriptor) throws -> (canonical: Digest, verified: Bool) {
        let dataPath = PathMapper.path(.uploadData(store.repository, uploadID))
        let onDisk = try driverCall { try store.driver.stat(dataPath) }
        guard onDisk.kind == .file else { throw BlobError.corruptUpload(id: id, reason: "data is not a regular file") }
        guard onDisk.size == state.size else {
            throw BlobError.corruptUpload(id: id, reason: "data is \(onDisk.size) bytes on disk, \(state.size) written")
        }
        if provisional.size > 0, provisional.size != state.size {
            throw BlobError.invalidLength(expected: provisional.size, actual: state.size)
        }
        let wanted = provisional.digest.algorithm
        if state.inSync && (wanted == .sha256 || state.verifiers[wanted] != nil) {
            let canonical = state.digester.digest()
            let check = wanted == .sha256 ? canonical : state.verifiers[wanted]!.digest()
            return (canonical, check == provisional.digest)
        }
        // Full pass over the data: sha256 for the canonical digest, plus the provisional algorithm.
        let sha256 = Digester(.sha256)
        let verifier = wanted == .sha256 ? sha256 : Digester(wanted)
        let reader = try driverCall { try store.driver.reader(dataPath) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while offset < state.size {
            let n = try buffer.withUnsafeMutableBytes { raw in
                let n = try driverCall { try reader.read(into: raw, at: offset) }
                let chunk = UnsafeRawBufferPointer(rebasing: raw[..<n])
                sha256.update(chunk)
                if verifier !== sha256 { verifier.update(chunk) }
                return n
            }
            guard n > 0 else { throw BlobError.corruptUpload(id: id, reason: "data shrank while it was verified") }
            offset += Int64(n)
        }
        return (sha256.digest(), verifier.digest() == provisional.digest)
    }

    /// Moves the upload into `blobs/` unless the same blob is already there. A file of another
    /// size under that digest is corrupt by definition and is replaced by the verified bytes.
    private func moveUnlessPresent(_ canonical: Descriptor) throws {
        let blobPath = PathMapper.path(.blobData(canonical.digest))
        let existing: FileInfo? = try driverCall {
            do { return try store.driver.stat(blobPath) } catch StorageDriverError.pathNotFound { return nil }
        }
        if let existing, existing.kind == .file, existing.size == canonical.size { return }
        try driverCall { try store.driver.move(from: PathMapper.path(.uploadData(store.repository, uploadID)), to: blobPath) }
    }

    private func removeUpload(reportingErrors: Bool) throws {
        do {
            try store.driver.delete(PathMapper.path(.upload(store.repository, uploadID)))
        } catch StorageDriverError.pathNotFound {
        } catch {
            store.logger.error("could not remove upload", metadata: ["upload": "\(id)", "error": "\(error)"])
            if reportingErrors { throw (error as? StorageDriverError)?.blobError ?? error }
        }
    }

    private func removeUploadQuietly() {
        try? removeUpload(reportingErrors: false)
    }
}
