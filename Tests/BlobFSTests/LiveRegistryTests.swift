import Distribution
import Foundation
import Glibc
import Storage
import StorageDriver
import Testing
import TestSupport

/// Mounted next to a live registry: what it adds or removes shows up within the directory and
/// negative-lookup timeouts, which the command line sets.
@Suite struct LiveRegistryTests {
    @Test func blobsAndRepositoriesAddedAfterMountingAppearAndRemovedLinksDisappear() throws {
        let workspace = try Workspace("live")
        defer { workspace.remove() }
        let first = try writeStore(root: workspace.root, [("live/app", seededBytes(count: 1000, seed: 700))])[0]
        let options = [
            "--dir-timeout", "0.5", "--negative-timeout", "0.5", "--blob-timeout", "60", "--cache-entries", "100",
            "--log-level", "debug", "-o", "allow_other",
        ]
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            #expect(mount.entry.superOptions.contains("allow_other"), "-o allow_other reaches the mount: \(mount.entry)")
            let blobs = mount.path("repo/live/app/blobs")
            let added = seededBytes(count: 77_777, seed: 701)
            let addedDigest = Digester.digest(of: added)
            let addedPath = blobs + "/\(addedDigest)"
            // Prime the kernel's caches with the old state: a negative entry and a listing.
            #expect(Posix.stat(addedPath).errno == .ENOENT)
            #expect(try FileManager.default.contentsOfDirectory(atPath: blobs) == ["\(first.digest)"])
            #expect(Posix.stat(mount.path("repo/live/other")).errno == .ENOENT)

            // The registry (our storage layer, same layout) adds a blob and a repository.
            try writeStore(root: workspace.root, [("live/app", added), ("live/other", seededBytes(count: 10, seed: 702))])
            #expect(MountTable.waitUntil(timeout: 5) { (try? Posix.stat(addedPath).get()) != nil }, "the added blob never appeared by name")
            #expect(MountTable.waitUntil(timeout: 5) {
                (try? FileManager.default.contentsOfDirectory(atPath: blobs).sorted()) == ["\(first.digest)", "\(addedDigest)"].sorted()
            }, "the added blob never appeared in the listing: \((try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? [])")
            #expect(MountTable.waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: mount.path("repo/live/other/blobs")) })
            #expect(try sha256Hex(ofFile: addedPath) == addedDigest.hex)

            // It removes a link (a blob delete): the listing drops it.
            let registry = Registry(driver: try FilesystemDriver(root: workspace.root), deleteEnabled: true)
            try registry.repository("live/app").blobs.delete(first.digest)
            #expect(MountTable.waitUntil(timeout: 5) {
                (try? FileManager.default.contentsOfDirectory(atPath: blobs)) == ["\(addedDigest)"]
            }, "the deleted link is still listed: \((try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? [])")
        }
    }
}
