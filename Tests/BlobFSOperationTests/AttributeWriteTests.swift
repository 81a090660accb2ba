@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// setxattr and removexattr (images-spec §5.2's table): `user.blobfs.*` accepted without effect on
/// a read-write mount, every other name ENOTSUP, EROFS on a read-only mount and in the OCI view.
@Suite struct AttributeWriteTests {
    let bytes = Array("a layer".utf8)

    @Test func theComputedAttributesAreAcceptedAndKeepTheirValues() throws {
        let fixture = OperationFixture(readWrite: true)
        let digest = try fixture.push(bytes, to: "app")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        for ino in [blob, try fixture.inode("repo/app/blobs"), try fixture.inode("repo")] {
            try fixture.fs.setxattr(ino: ino, name: "user.blobfs.digest")
            try fixture.fs.setxattr(ino: ino, name: "user.blobfs.mediatype")
            try fixture.fs.removexattr(ino: ino, name: "user.blobfs.size")
        }
        // What a read answers is still computed from the store.
        #expect(try fixture.fs.getxattr(ino: blob, name: "user.blobfs.digest", size: 4096) == .bytes(Array(digest.description.utf8)))
        #expect(try fixture.fs.getxattr(ino: blob, name: "user.blobfs.size", size: 4096) == .bytes(Array("\(bytes.count)".utf8)))
        // A file being written (cp -a sets them before its close) takes them too.
        let created = try fixture.fs.create(parent: try fixture.inode("repo/app/blobs"), name: Digester.digest(of: Array("new".utf8)).description)
        defer { fixture.fs.release(handle: created.open.handle) }
        try fixture.fs.setxattr(ino: created.entry.ino, name: "user.blobfs.digest")
    }

    @Test(arguments: ["user.other", "user.blobfs", "system.posix_acl_access", "security.selinux", "trusted.x"])
    func anyOtherNameIsNotSupported(name: String) throws {
        let fixture = OperationFixture(readWrite: true)
        let digest = try fixture.push(bytes, to: "app")
        for ino in [try fixture.inode("repo/app/blobs/\(digest)"), try fixture.inode("repo/app")] {
            #expect(errnoOf { try fixture.fs.setxattr(ino: ino, name: name) } == EOPNOTSUPP)
            #expect(errnoOf { try fixture.fs.removexattr(ino: ino, name: name) } == EOPNOTSUPP)
        }
    }

    @Test func aReadOnlyMountAndTheOCIViewRefuseWithEROFS() throws {
        let readOnly = OperationFixture(readWrite: false, ociView: true)
        let digest = try readOnly.push(bytes, to: "app")
        let blob = try readOnly.inode("repo/app/blobs/\(digest)")
        #expect(errnoOf { try readOnly.fs.setxattr(ino: blob, name: "user.blobfs.digest") } == EROFS)
        #expect(errnoOf { try readOnly.fs.removexattr(ino: blob, name: "user.blobfs.digest") } == EROFS)
        #expect(errnoOf { try readOnly.fs.setxattr(ino: blob, name: "user.other") } == EROFS)

        let readWrite = OperationFixture(readWrite: true, ociView: true)
        let pushed = try readWrite.push(bytes, to: "app")
        for path in ["oci/app/index.json", "oci/app/blobs"] {
            let ino = try readWrite.inode(path)
            #expect(errnoOf { try readWrite.fs.setxattr(ino: ino, name: "user.blobfs.digest") } == EROFS, "\(path)")
            #expect(errnoOf { try readWrite.fs.removexattr(ino: ino, name: "user.blobfs.digest") } == EROFS, "\(path)")
        }
        #expect(errnoOf { try readWrite.fs.setxattr(ino: 999_999, name: "user.blobfs.digest") } == ENOENT)
        try readWrite.fs.setxattr(ino: try readWrite.inode("repo/app/blobs/\(pushed)"), name: "user.blobfs.digest")
    }
}
