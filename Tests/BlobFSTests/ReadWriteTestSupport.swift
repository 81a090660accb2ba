import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

// Helpers for the read-write mount tests: what is on disk (links, data, uploads), writes through
// raw system calls with the errno of each step, a small tmpfs, the registry's view of a store.

/// `blobfs mount … --read-write`.
let readWriteOptions = ["--read-write"]

/// `<root>/docker/registry/v2`.
func registryV2(_ root: String) -> String { root + "/docker/registry/v2" }

/// Makes `root` an empty registry store: nothing but `docker/registry/v2`.
func makeEmptyStore(_ root: String) throws {
    try FileManager.default.createDirectory(atPath: registryV2(root), withIntermediateDirectories: true)
}

/// `…/repositories/<name>/_layers/<alg>/<hex>/link`.
func linkPath(root: String, repository: String, _ digest: Digest) -> String {
    "\(registryV2(root))/repositories/\(repository)/_layers/\(digest.algorithm.rawValue)/\(digest.hex)/link"
}

/// `…/repositories/<name>/_layers`: the directory that makes a path a repository.
func layersPath(root: String, repository: String) -> String {
    "\(registryV2(root))/repositories/\(repository)/_layers"
}

func fileExists(_ path: String) -> Bool {
    var info = Glibc.stat()
    return lstat(path, &info) == 0
}

/// Every entry directly inside any `_uploads` directory of the store (an upload in progress or
/// left behind), as paths relative to `repositories/`. An empty `_uploads` directory is fine.
func uploadEntries(root: String) -> [String] {
    let repositories = registryV2(root) + "/repositories"
    guard let enumerator = FileManager.default.enumerator(atPath: repositories) else { return [] }
    var found: [String] = []
    while let relative = enumerator.nextObject() as? String {
        let components = relative.split(separator: "/")
        if components.count >= 2 && components[components.count - 2] == "_uploads" {
            found.append(relative)
            enumerator.skipDescendants()
        }
    }
    return found.sorted()
}

/// The `data` files of the uploads of one repository with their sizes: how far a write in progress
/// has got on disk. Cheap enough to poll (one directory listing and a stat per upload).
func uploadDataSizes(root: String, repository: String) -> [String: Int64] {
    let uploads = "\(registryV2(root))/repositories/\(repository)/_uploads"
    guard let children = try? FileManager.default.contentsOfDirectory(atPath: uploads) else { return [:] }
    var sizes: [String: Int64] = [:]
    for child in children {
        var info = Glibc.stat()
        if lstat("\(uploads)/\(child)/data", &info) == 0 { sizes["\(uploads)/\(child)"] = Int64(info.st_size) }
    }
    return sizes
}

/// Reads an upload's `startedat` (`YYYY-MM-DDTHH:MM:SSZ`).
func uploadStartedAt(_ uploadDirectory: String) -> Date? {
    guard let bytes = try? Posix.readFile(uploadDirectory + "/startedat") else { return nil }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: String(decoding: bytes, as: UTF8.self))
}

/// Checks what a committed blob left on disk: the link of the name it was written under holds
/// exactly `sha256:<hex>` (no newline), so does the canonical link, and the data (stored once,
/// under sha256) hashes to the canonical digest (by sha256sum).
func expectCommitted(root: String, _ blob: StoredBlob, sourceLocation: SourceLocation = #_sourceLocation) {
    let expected = Array(blob.canonical.description.utf8)
    for digest in Set([blob.digest, blob.canonical]) {
        let path = linkPath(root: root, repository: blob.repository, digest)
        switch Result(catching: { try Posix.readFile(path) }) {
        case .success(let link):
            #expect(link == expected, "link \(path) holds \(String(decoding: link, as: UTF8.self).debugDescription), expected \(blob.canonical)", sourceLocation: sourceLocation)
        case .failure(let error):
            Issue.record("\(blob): no link \(path): \(error)", sourceLocation: sourceLocation)
        }
    }
    let data = dataPath(root: root, blob.canonical)
    #expect((try? sha256Hex(ofFile: data)) == blob.canonical.hex, "\(blob): data \(data) missing or wrong", sourceLocation: sourceLocation)
    if blob.digest.algorithm != .sha256 {
        let aliasData = dataPath(root: root, blob.digest)
        #expect(!fileExists(aliasData), "\(blob): data stored under \(blob.digest.algorithm) too: \(aliasData)", sourceLocation: sourceLocation)
    }
}

/// Checks that nothing of a blob that must not have been committed is on disk in `repository`:
/// no link under its name or its canonical digest, and (when `noData`) no data.
func expectNotCommitted(
    root: String, repository: String, named digest: Digest, canonical: Digest, noData: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    for digest in Set([digest, canonical]) {
        let link = linkPath(root: root, repository: repository, digest)
        #expect(!fileExists(link), "a link was left: \(link)", sourceLocation: sourceLocation)
    }
    if noData {
        for digest in Set([digest, canonical]) where digest.algorithm == .sha256 {
            #expect(!fileExists(dataPath(root: root, digest)), "data was left: \(dataPath(root: root, digest))", sourceLocation: sourceLocation)
        }
    }
}

/// What happened at each step of open + write + close, with the exact errno.
struct WriteOutcome: Sendable, CustomStringConvertible {
    var open: Errno?
    var write: Errno?
    /// Bytes written before the first failing write (all of them if none failed).
    var written = 0
    var close: Errno?

    var succeeded: Bool { open == nil && write == nil && close == nil }
    /// The first errno, whichever step gave it.
    var firstError: Errno? { open ?? write ?? close }

    var description: String {
        if succeeded { return "open, write (\(written) bytes), close all succeeded" }
        return "open: \(open.map(\.description) ?? "ok"), write: \(write.map { "\($0) after \(written) bytes" } ?? "ok (\(written) bytes)"), close: \(close.map(\.description) ?? (open == nil ? "ok" : "-"))"
    }
}

/// open(path, flags, 0644), write all bytes in `chunk`-byte calls, close; reports every step.
/// A failed write does not stop the close (that is what cp does, and what must clean up).
func writeThroughSyscalls(_ path: String, _ bytes: [UInt8], flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC, chunk: Int = 1 << 20)
    -> WriteOutcome
{
    var outcome = WriteOutcome()
    // O_CLOEXEC: a child process started meanwhile by another test must not inherit the
    // descriptor (its exit would close it, and FUSE flushes at every close).
    let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        outcome.open = Errno(errno)
        return outcome
    }
    while outcome.written < bytes.count {
        let count = min(chunk, bytes.count - outcome.written)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + outcome.written, count) }
        if n < 0 {
            if errno == EINTR { continue }
            outcome.write = Errno(errno)
            break
        }
        outcome.written += n
    }
    if Glibc.close(fd) != 0 { outcome.close = Errno(errno) }
    return outcome
}

/// Files `relativePath` of each blob below `directory` (0644, directories 0755), for trees laid out like the mount.
func layOut(_ blobs: [StoredBlob], under directory: String) throws {
    for blob in blobs {
        let path = directory + "/" + blob.relativePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Posix.writeFile(path, blob.bytes)
    }
}

/// The names `ls -a` shows in a directory (a real tool's readdir).
func listing(_ directory: String) throws -> Set<String> {
    let result = try Command.run("ls", ["-a", "-1", directory])
    guard result.status == 0 else { throw TestSupportError("ls failed: \(result)") }
    return Set(result.stdoutText.split(separator: "\n").map(String.init)).subtracting([".", ".."])
}

/// `blobfs <arguments>` with the executable under test.
func runBlobfs(_ arguments: [String], timeout: Double = 120) throws -> CommandResult {
    try Command.run(try BlobfsExecutable.path(), arguments, timeout: timeout)
}

/// A tmpfs of a fixed size mounted on a directory, for running a store out of space. Unmounted
/// by `unmount()` or at deinit, lazily if it is still busy.
final class TmpfsMount: Sendable {
    let path: String

    init(at path: String, size: String) throws {
        self.path = path
        let result = try Command.run("mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0755", "blobfs-test-tmpfs", path], timeout: 30)
        guard result.status == 0, MountTable.isMounted(path) else {
            throw TestSupportError("cannot mount a tmpfs on \(path): \(result)")
        }
    }

    func unmount() {
        guard MountTable.isMounted(path) else { return }
        if let result = try? Command.run("umount", [path], timeout: 30), result.status == 0, !MountTable.isMounted(path) { return }
        _ = try? Command.run("umount", ["-l", path], timeout: 30)
    }

    deinit { unmount() }
}

/// Checks that Debian's registry, started with no descriptor cache on `root`, serves every blob
/// under every name: HEAD and GET 200, the right length, the same bytes, `Docker-Content-Digest`
/// the canonical sha256 digest.
func expectRegistryServes(root: String, _ blobs: [StoredBlob], sourceLocation: SourceLocation = #_sourceLocation) throws {
    try RegistryServer.withServer(root: root, cache: .none) { server in
        for blob in blobs {
            let head = try server.client.head(repository: blob.repository, digest: "\(blob.digest)")
            #expect(head.status == 200, "HEAD \(blob): \(head.status)\n\(server.log.tail(2000))", sourceLocation: sourceLocation)
            #expect(head.header("Docker-Content-Digest") == "\(blob.canonical)", "HEAD \(blob): digest \(head.header("Docker-Content-Digest") ?? "none")", sourceLocation: sourceLocation)
            #expect(head.header("Content-Length") == "\(blob.bytes.count)", "HEAD \(blob): length \(head.header("Content-Length") ?? "none")", sourceLocation: sourceLocation)
            let get = try server.client.get(repository: blob.repository, digest: "\(blob.digest)")
            #expect(get.status == 200, "GET \(blob): \(get.status)", sourceLocation: sourceLocation)
            #expect(get.header("Docker-Content-Digest") == "\(blob.canonical)", "GET \(blob): digest", sourceLocation: sourceLocation)
            expectSameBytes(get.body, blob.bytes, "GET \(blob)", sourceLocation: sourceLocation)
        }
    }
}

/// Waits until the whole second an upload's `startedat` names is over, so that
/// `purge-uploads --older-than 0s` (which compares whole seconds: started before now) takes it.
func waitUntilStartedAtIsPast(_ uploadDirectories: [String]) {
    let latest = uploadDirectories.compactMap(uploadStartedAt).max() ?? Date()
    _ = MountTable.waitUntil(timeout: 5) { Date() >= latest.addingTimeInterval(1.05) }
}

/// Bytes available on the filesystem holding `path` (statvfs), 0 if it cannot be asked.
func freeBytes(_ path: String) -> Int64 {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return 0 }
    return Int64(info.f_bavail) * Int64(info.f_frsize)
}

/// Processes whose command line mentions `text` (a test's unique mountpoint: the daemon, its
/// fusermount3 auto_unmount helper), with their state, for messages.
func processesMentioning(_ text: String) -> String {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return "no /proc" }
    var found: [String] = []
    for entry in entries where Int32(entry) != nil {
        guard let raw = try? Posix.readFile("/proc/\(entry)/cmdline"), !raw.isEmpty else { continue }
        let commandLine = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        guard commandLine.contains(text) else { continue }
        let status = (try? Posix.readFile("/proc/\(entry)/status")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let state = status.split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init) ?? "?"
        found.append("\(entry) [\(state)] \(commandLine)")
    }
    return found.isEmpty ? "no process mentions \(text)" : found.joined(separator: "; ")
}

/// Debian's docker-registry running as another user (the way its package runs it: as
/// `docker-registry`), started through setpriv, on 127.0.0.1 with no descriptor cache.
final class RegistryAsUser {
    let port: Int
    private let process: RunningCommand
    private let directory: TemporaryDirectory
    private var result: CommandResult?

    init(root: String, user: String, group: UInt32) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-registry-as-user")
        _ = Glibc.chmod(directory.path, 0o755)
        port = try freeLoopbackPort()
        let config = directory.path + "/config.yml"
        try Posix.writeFile(config, Array("""
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: "\(root)"
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: "127.0.0.1:\(port)"
              secret: blobfs-test-secret

            """.utf8))
        _ = Glibc.chmod(config, 0o644)
        process = try Command.start(
            "setpriv", ["--reuid=\(user)", "--regid=\(group)", "--clear-groups", "/usr/bin/docker-registry", "serve", config],
            environment: ["REGISTRY_HTTP_ADDR": "127.0.0.1:\(port)"])
        let url = "http://127.0.0.1:\(port)/v2/"
        let ready = MountTable.waitUntil(timeout: 30) {
            guard self.process.isRunning else { return true }
            let probe = try? Command.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "--max-time", "2", url])
            return probe?.stdoutText == "200"
        }
        guard ready, process.isRunning else {
            let output = stop()
            throw TestSupportError("docker-registry as \(user) did not answer \(url): \(output)")
        }
    }

    var client: RegistryClient { RegistryClient(baseURL: "http://127.0.0.1:\(port)") }

    /// SIGTERM (SIGKILL after 10 s); what it printed.
    @discardableResult
    func stop() -> String {
        if let result { return "\(result)" }
        if process.isRunning { kill(process.pid, SIGTERM) }
        let finished = try? process.wait(timeout: 10)
        result = finished
        return finished.map { "\($0)" } ?? "(killed after 10 s)"
    }

    deinit { stop() }
}

/// The daemon's warning lines about uploads it threw away with data in them (one per upload:
/// `… warning blobfs.fs: upload discarded … bytes=N name=… repository=…`).
func discardWarnings(in log: String) -> [Substring] {
    log.split(separator: "\n").filter { $0.contains(" warning ") && $0.contains("upload discarded") }
}

/// The daemon's log lines that mention `text`.
func logLines(_ log: String, mentioning text: String) -> [Substring] {
    log.split(separator: "\n").filter { $0.contains(text) }
}
