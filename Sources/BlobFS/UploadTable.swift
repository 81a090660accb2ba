import Synchronization

/// The uploads of a read-write mount: by serial number (their inodes), and temporary names by
/// `<directory>/<name>` so that lookups, listings, rename and unlink in this mount find them.
/// Uploads under a digest name are not listed: they exist only for the writer that made them,
/// so that several writers of one digest never share an upload.
final class UploadTable: Sendable {
    private struct State {
        var bySerial: [UInt64: PendingUpload] = [:]
        var byName: [String: UInt64] = [:]
        var next: UInt64 = 1
    }

    private let state = Mutex(State())

    /// Uploads in progress, for the metrics.
    var count: Int { state.withLock { $0.bySerial.count } }

    func nextSerial() -> UInt64 {
        state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
    }

    func add(_ upload: PendingUpload) {
        state.withLock { state in
            state.bySerial[upload.serial] = upload
            if upload.digest == nil { state.byName[Self.key(upload.directory, upload.name)] = upload.serial }
        }
    }

    subscript(serial: UInt64) -> PendingUpload? {
        state.withLock { $0.bySerial[serial] }
    }

    /// The temporary file `name` in `directory`, if this mount is writing one.
    func named(_ name: String, in directory: String) -> PendingUpload? {
        state.withLock { state in state.byName[Self.key(directory, name)].flatMap { state.bySerial[$0] } }
    }

    /// Temporary files being written in `directory`, by name.
    func names(in directory: String) -> [(name: String, upload: PendingUpload)] {
        state.withLock { state in
            state.bySerial.values.filter { $0.digest == nil && $0.directory == directory && state.byName[Self.key(directory, $0.name)] == $0.serial }
                .map { ($0.name, $0) }
        }
    }

    /// Forgets an upload that ended (committed, failed, cancelled).
    func remove(_ upload: PendingUpload) {
        state.withLock { state in
            state.bySerial[upload.serial] = nil
            let key = Self.key(upload.directory, upload.name)
            if state.byName[key] == upload.serial { state.byName[key] = nil }
        }
    }

    /// Every upload still known, for cancelling at unmount.
    func all() -> [PendingUpload] {
        state.withLock { Array($0.bySerial.values) }
    }

    private static func key(_ directory: String, _ name: String) -> String { directory + "/" + name }
}
