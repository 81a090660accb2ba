import Foundation
import Testing
import TestSupport

/// Blobs carry user.blobfs.* attributes; other namespaces are "not supported", which makes
/// `ls -l` stop asking for ACLs and SELinux labels on every file.
@Suite struct ExtendedAttributeTests {
    @Test func onlyUserAttributesExistAndOthersAreNotSupported() throws {
        let workspace = try Workspace("xattr")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [("x/app", seededBytes(count: 1000, seed: 880))])
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let path = mount.path(blobs[0].relativePath)
            let digest = try Command.run("getfattr", ["--only-values", "-n", "user.blobfs.digest", path])
            #expect(digest.status == 0 && digest.stdoutText == blobs[0].canonical.description, "\(digest)")
            let missing = try Command.run("getfattr", ["-n", "user.blobfs.nothing", path])
            #expect(missing.status != 0 && missing.stderrText.contains("No such attribute"), "\(missing)")
            for name in ["security.selinux", "system.posix_acl_access", "trusted.x"] {
                let other = try Command.run("getfattr", ["-n", name, path])
                #expect(other.status != 0 && other.stderrText.contains("Operation not supported"), "\(name): \(other)")
            }
        }
    }
}
