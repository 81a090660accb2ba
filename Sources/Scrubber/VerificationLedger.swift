import Distribution
import Glibc
import Instrumentation
import StorageDriver
import Synchronization

/// Which blobs earlier mounts verified against their digests, kept in a file of the daemon's
/// user, so that a later mount serves them without hashing them again while their data file is
/// the very same version (device, inode, size, modification and change time: no write to the
/// data keeps all five). What it cannot see is a change that bypasses the filesystem (bit rot);
/// `blobfs verify` still hashes everything, and takes what it finds corrupt out of the ledger.
///
/// The file is append-only text, one line per event, read once when opened:
/// `<digest> <device> <inode> <size> <mtime ns> <ctime ns>` records a verified version, and
/// `forget <digest>` drops every record of a digest. Unknown lines are skipped.
public final class VerificationLedger: Sendable {
    /// Why a ledger cannot be used.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case unusable(path: String, errno: Int32)
        case unsafe(path: String, reason: String)

        public var description: String {
            switch self {
            case .unusable(let path, let code): "cannot use the verification ledger \(path): \(String(cString: strerror(code)))"
            case .unsafe(let path, let reason): "refusing the verification ledger \(path): \(reason)"
            }
        }
    }

    static let header = "# blobfs verification ledger v1: <digest> <device> <inode> <size> <mtime ns> <ctime ns>, or forget <digest>\n"

    /// Its path, as given.
    public let path: String
    private let fd: Int32
    private let records: Mutex<[FileKey: Record]>

    private struct FileKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    /// Compact: a store's every blob may be here (about 100 bytes each, the digest as raw bytes).
    private struct Record {
        var digest: RawDigest
        var version: FileVersion

        init(digest: Digest, version: FileVersion) {
            self.digest = RawDigest(digest)
            self.version = version
        }
    }

    /// Opens the ledger at `path`, creating it (mode 0600) if needed. It must be a regular file
    /// of the current user that nobody else can write, in a directory where nobody else can
    /// replace it: whoever can write it can make a mount serve unverified bytes.
    public init(path: String) throws(Failure) {
        // Before the open, which may create it: nothing is left behind in a directory refused.
        if let problem = PrivateFile.directoryProblem(containing: path) { throw .unsafe(path: path, reason: problem) }
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw errno == ELOOP ? .unsafe(path: path, reason: "it is a symbolic link") : .unusable(path: path, errno: errno)
        }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .unusable(path: path, errno: code)
        }
        // Others may read it (it holds only digests and inode numbers), never write or replace it.
        if let problem = PrivateFile.problem(st, forbidden: 0o022) {
            Glibc.close(fd)
            throw .unsafe(path: path, reason: problem)
        }
        let text: String
        do {
            text = try Self.readAll(fd, path: path)
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.path = path
        self.fd = fd
        records = Mutex(Self.replay(text))
        if text.isEmpty {
            append(Self.header)
        } else if text.utf8.last != UInt8(ascii: "\n") {
            // A last line cut short (a full disk, a truncated copy): end it, or the next record
            // would be glued onto it and lost with it.
            append("\n")
        }
    }

    deinit { Glibc.close(fd) }

    /// How many blob versions it vouches for.
    public var count: Int { records.withLock { $0.count } }

    /// Whether `version` of a data file was verified as `digest` before.
    public func vouches(for digest: Digest, _ version: FileVersion) -> Bool {
        let vouched = records.withLock { records in
            guard let record = records[FileKey(device: version.device, inode: version.inode)] else { return false }
            return record.version == version && record.digest == RawDigest(digest)
        }
        if vouched { BlobfsMetrics.current?.ledgerHits.increment() }
        return vouched
    }

    /// Remembers that `version` of a data file hashed to `digest`.
    public func record(_ digest: Digest, _ version: FileVersion) {
        let key = FileKey(device: version.device, inode: version.inode)
        let isNew = records.withLock { records in
            if let known = records[key], known.version == version, known.digest == RawDigest(digest) { return false }
            records[key] = Record(digest: digest, version: version)
            return true
        }
        if isNew {
            append("\(digest) \(version.device) \(version.inode) \(version.size) \(version.modified) \(version.changed)\n")
        }
    }

    /// Drops every record of these digests (blobs found corrupt); returns how many went.
    @discardableResult
    public func forget(_ digests: Set<Digest>) -> Int {
        guard !digests.isEmpty else { return 0 }
        let raw = Set(digests.map(RawDigest.init))
        let dropped = records.withLock { records in
            let before = records.count
            records = records.filter { !raw.contains($0.value.digest) }
            return before - records.count
        }
        append(digests.sorted { $0.description < $1.description }.map { "forget \($0)\n" }.joined())
        return dropped
    }

    /// One write of whole lines: with O_APPEND, lines of two mounts sharing a ledger never mix.
    /// A failed write only costs a later mount a hash.
    private func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }

    private static func readAll(_ fd: Int32, path: String) throws(Failure) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unusable(path: path, errno: errno)
            }
            if n == 0 { return String(decoding: bytes, as: UTF8.self) }
            bytes += chunk[..<n]
            offset += off_t(n)
        }
    }

    private static func replay(_ text: String) -> [FileKey: Record] {
        var records: [FileKey: Record] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == "forget", let digest = try? Digest(parsing: String(fields[1])) {
                let raw = RawDigest(digest)
                records = records.filter { $0.value.digest != raw }
                continue
            }
            guard fields.count == 6, let digest = try? Digest(parsing: String(fields[0])),
                let device = UInt64(fields[1]), let inode = UInt64(fields[2]), let size = Int64(fields[3]),
                let modified = Int64(fields[4]), let changed = Int64(fields[5])
            else { continue }
            let version = FileVersion(device: device, inode: inode, size: size, modified: modified, changed: changed)
            records[FileKey(device: device, inode: inode)] = Record(digest: digest, version: version)
        }
        return records
    }
}
