import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

// Helpers for the regression tests of the hostile-input run's "cases that behaved well"
// (docs/architecture.md, Tests): building damaged or hostile stores by hand, the way an attacker
// or a broken tool would, next to blobs written properly with writeStore.

/// `…/repositories/<repositoryPath>/_layers/<alg>/<directoryName>/link`, written with `content`
/// (directories created as needed). `repositoryPath` is raw: it may be a name blobfs must refuse.
@discardableResult
func writeRawLink(root: String, repositoryPath: String, directoryName: String, algorithm: String = "sha256", _ content: [UInt8])
    throws -> String
{
    let directory = "\(registryV2(root))/repositories/\(repositoryPath)/_layers/\(algorithm)/\(directoryName)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try Posix.writeFile(directory + "/link", content)
    return directory + "/link"
}

/// Links an existing blob into a repository given as a raw path (no name check).
@discardableResult
func linkRaw(root: String, repositoryPath: String, _ digest: Digest) throws -> String {
    try writeRawLink(root: root, repositoryPath: repositoryPath, directoryName: digest.hex, Array(digest.description.utf8))
}

/// Drops the kernel's cached pages of a file in a mount, so the next read reaches the daemon.
func dropPageCache(_ path: String) {
    guard case .success(let fd) = Posix.open(path, O_RDONLY | O_CLOEXEC) else { return }
    defer { close(fd) }
    _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
}

/// stat(1) of a path in a child process with a deadline: the errno text it printed, or "ok".
/// For names whose lookup could hang a thread of the test process if blobfs regressed.
func statInChild(_ path: String, timeout: Double = 15) throws -> String {
    let result = try Command.run("stat", ["-c", "%s", path], timeout: timeout)
    if result.status == 0 { return "ok" }
    return result.stderrText
}

/// Makes a Unix domain socket at `path` (bound at a short path first: sun_path holds 108 bytes,
/// and test workspaces are deeper than that), then renamed into place.
func makeSocket(at path: String) throws {
    let short = "/tmp/blobfs-sock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket: \(Errno(errno))") }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        for (index, byte) in short.utf8.enumerated() { buffer[index] = byte }
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0 else { throw TestSupportError("bind \(short): \(Errno(errno))") }
    guard rename(short, path) == 0 else {
        let error = Errno(errno)
        unlink(short)
        throw TestSupportError("rename \(short) -> \(path): \(error)")
    }
}

/// The lines of a daemon log that contain `text`.
func logLines(_ log: String, containing text: String) -> [Substring] {
    log.split(separator: "\n").filter { $0.contains(text) }
}
