import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// An upload thrown away with bytes in it always leaves a warning in the daemon's log (finding
/// F6: a restore that loses data must never do it in silence).
@Suite struct DiscardedUploadTests {
    /// An upload thrown away with data in it (its last close without a matching digest, its writer
    /// killed, unmount before a temporary name was renamed) is a warning with its name, repository
    /// and size; what the writer asked for (unlink of a temporary name) and an empty upload are not.
    @Test func uploadsDiscardedWithDataAreWarningsWithNameRepositoryAndSize() throws {
        let workspace = try Workspace("rw-warn")
        defer { workspace.remove() }
        let root = workspace.root
        try writeStore(root: root, [("warn/app", seededBytes(count: 100, seed: 12_400))])
        let wrong = seededBytes(count: 30_000, seed: 12_401)
        let claimed = Digester.digest(of: seededBytes(count: 30_000, seed: 12_402))
        let killedName = Digester.digest(of: seededBytes(count: 5, seed: 12_403))
        let source = workspace.path("source")
        try Posix.writeFile(source, seededBytes(count: 200_000, seed: 12_404))
        let leftBehind = ".\(Digester.digest(of: wrong)).LeFt00"
        let unlinked = ".\(Digester.digest(of: wrong)).UnLnk0"
        let empty = Digester.digest(of: seededBytes(count: 7, seed: 12_405))

        let mount = try BlobfsMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions)
        defer { mount.stop() }
        let blobs = mount.path("repo/warn/app/blobs")
        func warnings(for name: String) -> [Substring] { discardWarnings(in: mount.log).filter { $0.contains("name=\(name) ") || $0.hasSuffix("name=\(name)") } }

        // What the writer asked for, and empty uploads: no warnings (checked at the end).
        #expect(writeThroughSyscalls("\(blobs)/\(unlinked)", wrong, flags: O_RDWR | O_CREAT | O_EXCL).succeeded)
        #expect(syscallOutcome { Int(Glibc.unlink("\(blobs)/\(unlinked)")) } == .succeeded)
        let touched = try Command.run("touch", ["\(blobs)/\(empty)"])
        #expect(touched.status != 0, "touch of a non-empty digest: \(touched)")

        // The last close of wrong content under a digest name.
        let outcome = writeThroughSyscalls("\(blobs)/\(claimed)", wrong)
        #expect(outcome.close == .EIO, "\(outcome)")
        #expect(MountTable.waitUntil(timeout: 10) { !warnings(for: claimed.description).isEmpty }, "no warning after the last close:\n\(mount.log.tail(3000))")
        #expect(warnings(for: claimed.description).contains { $0.contains("at its last close") && $0.contains("repository=warn/app") && $0.contains("bytes=30000") },
            "\(warnings(for: claimed.description))")

        // A writer killed in the middle: 100 000 bytes written, the descriptor still open. (head's
        // own close of its duplicate already fails with EIO, since the bytes so far do not match;
        // the shell keeps the upload open.)
        let writer = try Command.start("bash", ["-c", "exec > \"$1\"; head -c 100000 \"$2\"; exec sleep 600", "bash", "\(blobs)/\(killedName)", source])
        let written = MountTable.waitUntil(timeout: 30) { uploadDataSizes(root: root, repository: "warn/app").values.contains(100_000) }
        #expect(written, "the writer did not get to 100 000 bytes: \(uploadDataSizes(root: root, repository: "warn/app"))")
        kill(writer.pid, SIGKILL)
        _ = try? writer.wait(timeout: 30)
        #expect(MountTable.waitUntil(timeout: 10) { !warnings(for: killedName.description).isEmpty }, "no warning after the writer was killed:\n\(mount.log.tail(3000))")
        #expect(warnings(for: killedName.description).contains { $0.contains("repository=warn/app") && $0.contains("bytes=100000") }, "\(warnings(for: killedName.description))")

        // A temporary name written, closed and never renamed, then a real unmount.
        #expect(writeThroughSyscalls("\(blobs)/\(leftBehind)", wrong, flags: O_RDWR | O_CREAT | O_EXCL).succeeded)
        let unmount = try Command.run("fusermount3", ["-u", mount.mountpoint])
        #expect(unmount.status == 0, "\(unmount)")
        #expect(mount.waitForExit(timeout: 20) == 0, "the daemon after fusermount3 -u")
        #expect(warnings(for: leftBehind).contains { $0.contains("at unmount: it was never renamed to its digest") && $0.contains("repository=warn/app") && $0.contains("bytes=30000") },
            "no warning for the temporary name discarded at unmount:\n\(mount.log.tail(3000))")

        for name in [unlinked, empty.description] {
            #expect(warnings(for: name).isEmpty, "a warning for \(name), which lost nothing the writer wanted: \(warnings(for: name))")
        }
        #expect(discardWarnings(in: mount.log).count == 3, "one warning per discarded upload:\n\(discardWarnings(in: mount.log).joined(separator: "\n"))")
        #expect(uploadEntries(root: root).isEmpty, "uploads left: \(uploadEntries(root: root))")
    }
}
