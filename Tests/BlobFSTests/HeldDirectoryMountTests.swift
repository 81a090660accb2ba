import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A mount reads links and stats data files below directories its driver holds open
/// (docs/architecture.md, "Lookups"): what an operator does to those directories on disk while it
/// is mounted shows through it, never an old directory's answer once the mount has looked again.
@Suite struct HeldDirectoryMountTests {
    /// The kernel asks again at every use: only the daemon's answer is under test.
    static let noKernelCache = ["--blob-timeout", "0", "--dir-timeout", "0", "--negative-timeout", "0"]

    /// Stats `path` until `done` says so (at most 10 s: the held directories are checked again
    /// each second), and returns the last outcome.
    private func poll(_ path: String, until done: (Result<Glibc.stat, Errno>) -> Bool) -> Result<Glibc.stat, Errno> {
        let started = ContinuousClock.now
        var outcome = Posix.stat(path)
        while !done(outcome), ContinuousClock.now - started < .seconds(10) { outcome = Posix.stat(path) }
        return outcome
    }

    @Test func aRepositoryRemovedAndMadeAgainShowsItsNewLinks() throws {
        let workspace = try Workspace("held-remade")
        defer { workspace.remove() }
        let old = try writeStore(root: workspace.root, [("team/app", seededBytes(count: 300, seed: 1))])[0]
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: Self.noKernelCache) { mount in
            expectSameBytes(try Posix.readFile(mount.path(old.relativePath)), old.bytes, "before")
            try FileManager.default.removeItem(atPath: workspace.root + "/docker/registry/v2/repositories/team/app")
            let new = try writeStore(root: workspace.root, [("team/app", seededBytes(count: 500, seed: 2))])[0]
            // At once: the removed directory is noticed at the first name it does not have.
            expectSameBytes(try Posix.readFile(mount.path(new.relativePath)), new.bytes, "the new repository's blob")
            #expect(Posix.stat(mount.path(old.relativePath)).errno == .ENOENT, "the old repository's blob")
        }
    }

    @Test func aRepositoryRenamedAwayIsNotServedUnderItsOldName() throws {
        let workspace = try Workspace("held-renamed")
        defer { workspace.remove() }
        let old = try writeStore(root: workspace.root, [("app", seededBytes(count: 300, seed: 3))])[0]
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: Self.noKernelCache) { mount in
            expectSameBytes(try Posix.readFile(mount.path(old.relativePath)), old.bytes, "before")
            let repositories = workspace.root + "/docker/registry/v2/repositories"
            try FileManager.default.moveItem(atPath: repositories + "/app", toPath: repositories + "/moved")
            let new = try writeStore(root: workspace.root, [("app", seededBytes(count: 500, seed: 4))])[0]
            // The renamed directory still holds the old link; `app` names the new one.
            #expect(poll(mount.path(old.relativePath)) { $0.errno == .ENOENT }.errno == .ENOENT, "the old blob under the old name")
            #expect(poll(mount.path(new.relativePath)) { $0.errno == nil }.errno == nil, "the new blob")
            expectSameBytes(try Posix.readFile(mount.path(new.relativePath)), new.bytes, "the new repository's blob")
            expectSameBytes(try Posix.readFile(mount.path("repo/moved/blobs/\(old.digest)")), old.bytes, "the old blob under the new name")
            #expect(Posix.stat(mount.path(old.relativePath)).errno == .ENOENT, "the old blob under the old name, again")
        }
    }

    @Test func aLayersDirectoryReplacedByASymbolicLinkIsRefused() throws {
        let workspace = try Workspace("held-symlink")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [("app", seededBytes(count: 300, seed: 5)), ("app", seededBytes(count: 301, seed: 6))])
        // The kernel's own timeouts as a mount has them by default: `blobs/` stays known to it.
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            expectSameBytes(try Posix.readFile(mount.path(blobs[0].relativePath)), blobs[0].bytes, "before")
            let app = workspace.root + "/docker/registry/v2/repositories/app"
            try FileManager.default.moveItem(atPath: app + "/_layers", toPath: workspace.path("elsewhere"))
            #expect(symlink(workspace.path("elsewhere"), app + "/_layers") == 0)
            // A name never looked up: refused (EIO while the kernel still knows `blobs/`, ENOENT
            // once `app` is no repository to it either), within a recheck of the held directory.
            let refused = poll(mount.path(blobs[1].relativePath)) { $0.errno != nil }
            #expect(refused.errno == .EIO || refused.errno == .ENOENT, "through a symlinked _layers: \(String(describing: refused.errno))")
            #expect(Posix.stat(mount.path(blobs[1].relativePath)).errno != nil, "served again")
        }
    }

    @Test func descriptorsStayBoundedOverAThousandRepositories() throws {
        let workspace = try Workspace("held-bounded")
        defer { workspace.remove() }
        // Four times the 256 directories the driver holds: 10,000 took 76 s of a debug build's test
        // run for nothing more. The registry's layout, written by Python's os calls.
        let count = 1_000
        let script = """
            import hashlib, os, sys
            v2 = os.path.join(sys.argv[1], "docker", "registry", "v2")
            for i in range(int(sys.argv[2])):
                data = b"blob %d" % i
                hex = hashlib.sha256(data).hexdigest()
                blob = os.path.join(v2, "blobs", "sha256", hex[:2], hex)
                os.makedirs(blob, exist_ok=True)
                open(os.path.join(blob, "data"), "wb").write(data)
                link = os.path.join(v2, "repositories", "r%d" % i, "_layers", "sha256", hex)
                os.makedirs(link)
                open(os.path.join(link, "link"), "w").write("sha256:" + hex)
            """
        let made = try Command.run("python3", ["-c", script, workspace.root, String(count)])
        #expect(made.status == 0, "\(made)")
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let descriptors = { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(mount.pid)/fd").count) ?? -1 }
            let before = descriptors()
            var wrong: [String] = []
            for index in 0..<count {
                let bytes = Array("blob \(index)".utf8)
                let path = mount.path("repo/r\(index)/blobs/\(Digester.digest(of: bytes))")
                if case .success(let info) = Posix.stat(path), info.st_size == bytes.count { continue }
                wrong.append(path)
            }
            let after = descriptors()
            #expect(wrong.isEmpty, "\(wrong.count) blobs not found, first \(wrong.prefix(2))")
            // At most 256 held directories (and what the daemon had open before).
            #expect(before > 0 && after - before <= 256, "\(before) descriptors before, \(after) after \(count) repositories")
        }
    }
}
