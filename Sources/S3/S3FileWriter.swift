import Glibc
import StorageDriver
import Synchronization

/// Appends to one object through a multipart upload: bytes gather until a part is full
/// (`partSize`, at least S3's 5 MiB), each full part is uploaded as it fills, and `commit` (or
/// `close`) uploads the rest as the last part and completes the upload, which makes the object
/// appear whole. A file that never fills a part is one PutObject. `cancel` aborts the upload and
/// removes the object. After a failed request the writer only fails: its bytes are no longer
/// known to be in order.
final class S3FileWriter: DriverFileWriter {
    private let driver: S3Driver
    private let path: DriverPath
    private let key: String
    private let written: Atomic<Int64>

    private struct State {
        /// Bytes not yet in a part.
        var pending: [UInt8] = []
        var uploadID: String?
        /// The uploaded parts' ETags, part 1 first.
        var etags: [String] = []
        /// Whether closing must write the object: a new or truncated file, or one appended to.
        var changed: Bool
        var finished = false
        var failure: StorageDriverError?
    }

    /// Serialises this writer's own calls (a part upload runs under it, so a second write waits
    /// for the first, in order); `size` reads `written` and never waits.
    private let state: Mutex<State>

    private init(driver: S3Driver, path: DriverPath, state: State, size: Int64) {
        self.driver = driver
        self.path = path
        key = driver.key(path)
        written = Atomic(size)
        self.state = Mutex(state)
    }

    /// A writer that truncates (nothing is sent until the first full part or the close), or one
    /// that appends: a small existing object is read back into the first part, a large one is
    /// copied by the server as the first parts of a new upload.
    static func open(driver: S3Driver, path: DriverPath, append: Bool) throws(StorageDriverError) -> S3FileWriter {
        let key = driver.key(path)
        guard append else { return S3FileWriter(driver: driver, path: path, state: State(changed: true), size: 0) }
        let existing: Int64
        do throws(StorageDriverError) {
            existing = try driver.call("head", path) { () throws(S3Failure) in try driver.client.head(key) }.size
        } catch .pathNotFound {
            return S3FileWriter(driver: driver, path: path, state: State(changed: true), size: 0)
        }
        var state = State(changed: false)
        if existing < Int64(driver.tuning.partSize) {
            state.pending = try driver.getContent(path, limit: driver.tuning.partSize)
            return S3FileWriter(driver: driver, path: path, state: state, size: Int64(state.pending.count))
        }
        let uploadID = try driver.call("create upload", path) { () throws(S3Failure) in try driver.client.createMultipartUpload(key) }
        state.uploadID = uploadID
        do throws(StorageDriverError) {
            // Equal ranges of at most copyPartSize: every one, the last included, is over 5 MiB,
            // since the parts written next come after it.
            let count = (existing + driver.tuning.copyPartSize - 1) / driver.tuning.copyPartSize
            for index in 0..<count {
                let first = existing * index / count
                let last = existing * (index + 1) / count - 1
                state.etags.append(
                    try driver.call("copy part", path) { () throws(S3Failure) in
                        try driver.client.uploadPartCopy(key, uploadID: uploadID, number: Int(index) + 1, source: key, first: first, last: last)
                    })
            }
        } catch {
            try? driver.client.abortMultipartUpload(key, uploadID: uploadID)
            throw error
        }
        return S3FileWriter(driver: driver, path: path, state: state, size: existing)
    }

    var size: Int64 { written.load(ordering: .acquiring) }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            try usable(state)
            state.pending.append(contentsOf: bytes)
            state.changed = true
            written.add(Int64(bytes.count), ordering: .releasing)
            let partSize = driver.tuning.partSize
            while state.pending.count >= partSize {
                try uploadPart(Array(state.pending[..<partSize]), &state)
                state.pending.removeFirst(partSize)
            }
        }
    }

    /// Completes the upload: the object appears with every byte written. Later writes fail.
    func commit() throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            if state.finished && state.failure == nil { return }
            try usable(state)
            try finish(&state)
        }
    }

    /// As `commit`, with nothing to report: a caller that wants to know commits first.
    func close() {
        state.withLock { state in
            guard !state.finished else { return }
            if state.failure == nil {
                try? finish(&state)
            } else if let id = state.uploadID {
                try? driver.client.abortMultipartUpload(key, uploadID: id)
            }
            state.finished = true
        }
    }

    func cancel() throws(StorageDriverError) {
        try state.withLock { (state) throws(StorageDriverError) in
            let wasFinished = state.finished
            state.finished = true
            state.failure = state.failure ?? .io(operation: "s3 write (cancelled)", path: path.value, errno: EBADF)
            if !wasFinished, let id = state.uploadID {
                try driver.call("abort upload", path) { () throws(S3Failure) in try driver.client.abortMultipartUpload(key, uploadID: id) }
            }
            state.uploadID = nil
            do throws(StorageDriverError) {
                try driver.call("delete", path) { () throws(S3Failure) in try driver.client.delete(key) }
            } catch .pathNotFound {}
        }
    }

    private func usable(_ state: State) throws(StorageDriverError) {
        if let failure = state.failure { throw failure }
        if state.finished { throw .io(operation: "s3 write (closed)", path: path.value, errno: EBADF) }
    }

    private func uploadPart(_ bytes: [UInt8], _ state: inout State) throws(StorageDriverError) {
        do throws(StorageDriverError) {
            let id: String
            if let existing = state.uploadID {
                id = existing
            } else {
                id = try driver.call("create upload", path) { () throws(S3Failure) in try driver.client.createMultipartUpload(key) }
                state.uploadID = id
            }
            let number = state.etags.count + 1
            state.etags.append(
                try driver.call("upload part", path) { () throws(S3Failure) in
                    try driver.client.uploadPart(key, uploadID: id, number: number, bytes)
                })
        } catch {
            state.failure = error
            throw error
        }
    }

    private func finish(_ state: inout State) throws(StorageDriverError) {
        defer { state.finished = true }
        do throws(StorageDriverError) {
            guard state.changed else {
                // Appended to, then nothing written: the object stays as it was.
                if let id = state.uploadID { try? driver.client.abortMultipartUpload(key, uploadID: id) }
                return
            }
            guard let id = state.uploadID else {
                let content = state.pending
                try driver.call("put", path) { () throws(S3Failure) in try driver.client.put(key, content) }
                return
            }
            if !state.pending.isEmpty {
                try uploadPart(state.pending, &state)
                state.pending = []
            }
            let etags = state.etags
            try driver.call("complete upload", path) { () throws(S3Failure) in
                try driver.client.completeMultipartUpload(key, uploadID: id, etags: etags)
            }
            state.uploadID = nil
        } catch {
            state.failure = error
            if let id = state.uploadID { try? driver.client.abortMultipartUpload(key, uploadID: id) }
            throw error
        }
    }
}
