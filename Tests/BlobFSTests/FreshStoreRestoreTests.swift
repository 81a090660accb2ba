import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// F12: a read-write mount of an empty directory is a restore into a fresh store; a read-only
/// mount of it, or any mount of a non-empty directory without a store, is still refused.
@Suite struct FreshStoreRestoreTests {
    @Test func aReadWriteMountOfAnEmptyDirectoryRestoresIntoAFreshStore() throws {
        let workspace = try Workspace("fresh")
        defer { workspace.remove() }
        let fresh = try workspace.makeDirectory("fresh")
        #expect(chown(fresh, 65534, 65534) == 0, "owned by the registry's user, say")
        let blobfs = try BlobfsExecutable.path()

        // Read-only: refused as before, and nothing is created.
        let readOnly = try Command.run(blobfs, ["mount", fresh, workspace.mountpoint], timeout: 30)
        #expect(readOnly.status == 1 && readOnly.stderrText.contains("it is empty"), "\(readOnly)")
        #expect(!fileExists(fresh + "/docker"))
        // Not empty and no store: the wrong directory, even read-write.
        let notAStore = try workspace.makeDirectory("not-a-store")
        try Posix.writeFile(notAStore + "/notes.txt", Array("hello\n".utf8))
        let wrong = try Command.run(blobfs, ["mount", notAStore, workspace.mountpoint, "--read-write"], timeout: 30)
        #expect(wrong.status == 1 && wrong.stderrText.contains("is not a registry store"), "\(wrong)")
        #expect(!fileExists(notAStore + "/docker") && !MountTable.isMounted(workspace.mountpoint))

        let bytes = seededBytes(count: 300_000, seed: 95)
        let digest = Digester.digest(of: bytes)
        let source = workspace.path("blob")
        try Posix.writeFile(source, bytes)
        try BlobfsMount.withMount(root: fresh, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            #expect(mount.log.contains("\(fresh) was empty: created docker/registry/v2 in it"), "one info line says so:\n\(mount.log)")
            let mkdir = try Command.run("mkdir", ["-p", mount.path("repo/restored/app/blobs")])
            #expect(mkdir.status == 0, "\(mkdir)")
            let cp = try Command.run("cp", [source, mount.path("repo/restored/app/blobs/\(digest)")])
            #expect(cp.status == 0, "\(cp)\n\(mount.log.tail(2000))")
        }
        for directory in ["docker", "docker/registry", "docker/registry/v2"] {
            let owner = try Posix.stat(fresh + "/" + directory).get().st_uid
            #expect(owner == 65534, "\(directory) is owned as the directory it was created in: uid \(owner)")
        }
        try BlobfsMount.withMount(root: fresh, mountpoint: workspace.mountpoint) { mount in
            let sum = try sha256Hex(ofFile: mount.path("repo/restored/app/blobs/\(digest)"))
            #expect(sum == digest.hex, "read back through a fresh read-only mount")
        }
        let verify = try runBlobfs(["verify", fresh])
        #expect(verify.status == 0, "\(verify)")
    }
}
