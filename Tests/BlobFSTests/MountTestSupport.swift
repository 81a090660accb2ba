import Distribution
import Foundation
import Glibc
import Storage
import StorageDriver
import Synchronization
import Testing
import TestSupport

/// One test's scratch space: `store/` (a registry storage root) and `mnt/` (the mountpoint), plus
/// room for copies. Tests `defer { workspace.remove() }` before mounting, so the mount is always
/// gone (withMount stops it first) when the directory is deleted.
final class Workspace: Sendable {
    let directory: TemporaryDirectory

    init(_ prefix: String) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-mt-\(prefix)")
        try Posix.makeDirectory(root)
        try Posix.makeDirectory(mountpoint)
    }

    var root: String { directory.path + "/store" }
    var mountpoint: String { directory.path + "/mnt" }

    /// A path in the workspace (outside the store and the mount).
    func path(_ name: String) -> String { directory.path + "/" + name }

    /// A new empty directory in the workspace.
    func makeDirectory(_ name: String) throws -> String {
        let path = path(name)
        try Posix.makeDirectory(path)
        return path
    }

    func remove() {
        // Never delete through a live mount: by now it must be gone.
        if MountTable.isMounted(mountpoint) { MountTable.forceUnmount(mountpoint) }
        directory.remove()
    }
}

/// A blob as a test stored it, with everything needed to check it through the mount.
struct StoredBlob: Sendable, CustomStringConvertible {
    let repository: String
    let bytes: [UInt8]
    /// The digest it is linked under in `repository` (sha256, or a sha512 alias).
    let digest: Digest

    /// The canonical digest: sha256 of the bytes.
    var canonical: Digest { Digester.digest(of: bytes) }
    /// The file inside the mount: `repo/<name>/blobs/<digest>`, with `<name>`'s components shown
    /// as the mount shows them.
    var relativePath: String { "repo/\(shownPath(repository))/blobs/\(digest)" }
    var description: String { "\(repository)@\(digest) (\(bytes.count) bytes)" }
}

/// A repository name as the mount's directories spell it: a component that is one of the
/// reserved entries of a repository's directory (or of the OCI view) is shown as `@<component>`.
func shownPath(_ repository: String) -> String {
    let reserved: Set<Substring> = ["blobs", "manifests", "tags", "index.json", "oci-layout"]
    return repository.split(separator: "/").map { reserved.contains($0) ? "@\($0)" : String($0) }.joined(separator: "/")
}

/// `<root>/docker/registry/v2/blobs/sha256/<xx>/<hex>/data`: where the bytes of a blob live.
func dataPath(root: String, _ digest: Digest) -> String {
    "\(root)/docker/registry/v2/blobs/\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)/data"
}

/// Writes blobs through our storage layer (upload, commit: exactly the registry's layout).
@discardableResult
func writeStore(root: String, _ blobs: [(repository: String, bytes: [UInt8])]) throws -> [StoredBlob] {
    let registry = Registry(driver: try FilesystemDriver(root: root))
    return try blobs.map { blob in
        let digest = Digester.digest(of: blob.bytes)
        let writer = try registry.repository(blob.repository).blobs.create()
        try writer.write(blob.bytes)
        let descriptor = try writer.commit(provisional: Descriptor(digest: digest, size: Int64(blob.bytes.count)))
        #expect(descriptor.digest == digest)
        return StoredBlob(repository: blob.repository, bytes: blob.bytes, digest: digest)
    }
}

/// Every regular file below `directory`, as paths relative to it (`find -type f -printf %P`), so
/// the listing comes from a real tool walking the tree (readdir, lookups) rather than from us.
func filesBelow(_ directory: String) throws -> Set<String> {
    let result = try Command.run("find", [directory, "-type", "f", "-printf", "%P\\n"])
    guard result.status == 0 else { throw TestSupportError("find failed: \(result)") }
    return Set(result.stdoutText.split(separator: "\n").map(String.init))
}

/// The blob files below `directory` (relative paths): files in a `blobs` directory. Manifests,
/// which the tree shows beside them, are checked by the tests of manifests.
func blobFilesBelow(_ directory: String) throws -> Set<String> {
    try filesBelow(directory).filter { path in
        let components = path.split(separator: "/")
        return components.count >= 2 && components[components.count - 2] == "blobs"
    }
}

/// `sha256sum` of many files in one run: path -> hex. Throws if the tool fails on any of them.
func sha256sums(_ paths: [String]) throws -> [String: String] {
    guard !paths.isEmpty else { return [:] }
    let result = try Command.run("sha256sum", ["--"] + paths, timeout: 120)
    guard result.status == 0 else { throw TestSupportError("sha256sum failed: \(result)") }
    var sums: [String: String] = [:]
    for line in result.stdoutText.split(separator: "\n") {
        let parts = line.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { continue }
        let name = parts[1].hasPrefix("*") || parts[1].hasPrefix(" ") ? String(parts[1].dropFirst()) : String(parts[1])
        sums[name] = String(parts[0])
    }
    return sums
}

/// Checks that `directory` holds exactly `blobs` (by relative path, with `prefix` stripped) with
/// the right bytes, judged by sha256sum.
func expectTree(
    _ directory: String, holds blobs: [StoredBlob], stripping prefix: String = "", _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let expected = Dictionary(blobs.map { (String($0.relativePath.dropFirst(prefix.count)), $0) }, uniquingKeysWith: { a, _ in a })
    let found = try blobFilesBelow(directory)
    #expect(found == Set(expected.keys), "\(what): files differ; missing \(Set(expected.keys).subtracting(found).sorted()), unexpected \(found.subtracting(expected.keys).sorted())", sourceLocation: sourceLocation)
    let paths = expected.keys.sorted().filter(found.contains).map { directory + "/" + $0 }
    let sums = try sha256sums(paths)
    for (relative, blob) in expected where found.contains(relative) {
        let path = directory + "/" + relative
        #expect(sums[path] == blob.canonical.hex, "\(what): sha256 of \(relative) is \(sums[path] ?? "missing"), expected \(blob.canonical.hex)", sourceLocation: sourceLocation)
        if case .success(let info) = Posix.stat(path) {
            #expect(Int(info.st_size) == blob.bytes.count, "\(what): size of \(relative)", sourceLocation: sourceLocation)
        }
    }
}

/// Runs `body` on `count` threads that start together, and waits for all of them (at most
/// `timeout` s: a reader stuck in a FUSE request fails the test instead of hanging it).
func onThreads(_ count: Int, timeout: Double = 90, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            start.wait()
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    for _ in 0..<count { start.signal() }
    return group.wait(timeout: .now() + timeout) == .success
}

/// Reads a file through read(2) in `chunk`-byte requests and compares every chunk with `expected`
/// as it goes (no 64 MiB copies per thread). Returns nil if all bytes and the size match, else why not.
func readAndCompare(_ path: String, expected: [UInt8], chunk: Int, direct: Bool = false) -> String? {
    var fd = Glibc.open(path, O_RDONLY | (direct ? Posix.O_DIRECT : 0) | O_CLOEXEC)
    var note = ""
    if fd < 0 && direct && errno == EINVAL {
        // The kernel refused O_DIRECT on this mount: read through the page cache instead.
        note = " (O_DIRECT refused, read cached)"
        fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
    }
    guard fd >= 0 else { return "open \(path): \(Errno(errno))" }
    defer { close(fd) }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
    defer { buffer.deallocate() }
    var offset = 0
    while true {
        let n = Glibc.read(fd, buffer.baseAddress, chunk)
        if n < 0 {
            if errno == EINTR { continue }
            return "read \(path) at \(offset): \(Errno(errno))\(note)"
        }
        if n == 0 { break }
        guard offset + n <= expected.count else {
            return "read \(path): more bytes than the blob has (\(offset + n) > \(expected.count))\(note)"
        }
        let same = expected.withUnsafeBytes { memcmp($0.baseAddress! + offset, buffer.baseAddress!, n) == 0 }
        guard same else { return "read \(path): wrong bytes in \(offset)..<\(offset + n)\(note)" }
        offset += n
    }
    return offset == expected.count ? nil : "read \(path): \(offset) bytes, expected \(expected.count)\(note)"
}

extension Result where Failure == Errno {
    /// The errno, or nil on success.
    var errno: Errno? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// Problems collected from several threads.
final class Problems: Sendable {
    private let list = Mutex<[String]>([])

    func add(_ problem: String) { list.withLock { $0.append(problem) } }
    var all: [String] { list.withLock { $0 } }
}

/// Pushes `bytes` to the registry under `digest` (the bytes' own by default), in one request or in
/// PATCHes of `chunk` bytes, and requires the registry's 201; `log` (the registry's) goes into
/// the error.
func pushBlob(
    _ client: RegistryClient, _ repository: String, _ bytes: [UInt8], digest: Digest? = nil, chunk: Int? = nil,
    log: @autoclosure () -> String
) throws -> StoredBlob {
    let digest = digest ?? Digester.digest(of: bytes)
    let response =
        if let chunk {
            try client.pushChunked(repository: repository, bytes: bytes, digest: "\(digest)", chunkSize: chunk)
        } else {
            try client.pushMonolithic(repository: repository, bytes: bytes, digest: "\(digest)")
        }
    guard response.status == 201 else {
        throw TestSupportError("push \(digest) to \(repository): \(response.status) \(response.text)\n\(log())")
    }
    return StoredBlob(repository: repository, bytes: bytes, digest: digest)
}
