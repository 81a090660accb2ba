import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// `blobfs verify` on a store with directories it cannot enter (F9): one problem line each, the
/// scrub goes on to the repositories after them, then the summary, and exit status 1.
@Suite struct VerifyHostileStoreTests {
    func layers(_ root: String, _ name: String) -> String { "\(root)/docker/registry/v2/repositories/\(name)/_layers" }

    @Test func aSymlinkedLayersInOneRepositoryDoesNotHideAGarbageLinkInTheNext() throws {
        let workspace = try Workspace("verify-hostile")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [("aaa", seededBytes(count: 3000, seed: 80)), ("zzz", seededBytes(count: 3001, seed: 81))])
        let outside = try workspace.makeDirectory("outside")
        #expect(rename(layers(root, "aaa"), outside + "/_layers") == 0 && symlink(outside + "/_layers", layers(root, "aaa")) == 0)
        try Posix.writeFile(layers(root, "zzz") + "/sha256/\(blobs[1].canonical.hex)/link", Array("garbage".utf8))

        let result = try Command.run(try BlobfsExecutable.path(), ["verify", root], timeout: 120)
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(result.status == 1, "\(result)")
        #expect(lines.count == 3, "two problems and the summary: \(result)")
        #expect(lines.first?.hasPrefix("unreachable: \(layers(root, "aaa")): a symbolic link") == true, "\(result)")
        #expect(lines.dropFirst().first?.hasPrefix("garbage link: \(layers(root, "zzz"))/sha256/\(blobs[1].canonical.hex)/link") == true, "\(result)")
        #expect(lines.last?.hasPrefix("blobfs verify: 2 problems in \(root) (1 garbage link, 1 unreachable)") == true, "\(result)")
        #expect(lines.last?.contains("in 2 repositories checked") == true, "\(result)")
        #expect(result.stderrText.isEmpty, "no crash line: \(result)")
    }

    /// A directory nobody but root can enter, scrubbed by nobody: a problem, not the end.
    @Test func anUnreadableLinkDirectoryIsOneProblemForAnotherUser() throws {
        let workspace = try Workspace("verify-unreadable")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [("aaa", seededBytes(count: 3000, seed: 82)), ("zzz", seededBytes(count: 3001, seed: 83))])
        let chmod = try Command.run("chmod", ["-R", "go+rX", workspace.path("")])
        #expect(chmod.status == 0, "\(chmod)")
        let closed = layers(root, "aaa") + "/sha256"
        #expect(Glibc.chmod(closed, 0o700) == 0)
        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", try BlobfsExecutable.path(), "verify", root]
        for extra in [[], ["--repository", "aaa"]] {
            let result = try Command.run("setpriv", asNobody + extra, timeout: 120)
            let lines = result.stdoutText.split(separator: "\n").map(String.init)
            #expect(result.status == 1, "\(extra): \(result)")
            #expect(lines.first?.hasPrefix("unreachable: \(closed): cannot be read:") == true && lines.first?.contains("Permission denied") == true, "\(extra): \(result)")
            #expect(lines.count == 2 && lines[1].hasPrefix("blobfs verify: 1 problem in"), "\(extra): \(result)")
        }
        _ = blobs
    }
}
