@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// create, write, flush, release, rename, unlink, mknod, mkdir and setattr of read-write mounts.
@Suite struct WriteTests {
    let bytes = Array("a new layer".utf8)
    var digest: Digest { Digester.digest(of: bytes) }

    @Test func aFileWrittenUnderItsDigestIsCommittedAtClose() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        #expect(try fixture.write(bytes, as: digest.description, in: blobs) == nil)
        #expect(fixture.notices.forgottenEntries.contains("\(blobs)/\(digest)"))
        let entry = try #require(try fixture.fs.lookup(parent: blobs, name: digest.description))
        #expect(try fixture.contents(of: entry.ino, size: 100) == bytes)
        #expect(try fixture.registry.repository("app").blobs.linkTarget(digest) == digest)
        #expect(fixture.fs.uploads.all().isEmpty && fixture.fs.handles.count == 0)
    }

    @Test func contentThatDoesNotMatchItsNameFailsCloseAndIsNotStored() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let failure = try #require(try fixture.write(Array("other bytes".utf8), as: digest.description, in: blobs))
        #expect(errnoValue(for: failure) == EIO)
        #expect(try fixture.fs.lookup(parent: blobs, name: digest.description) == nil)
        #expect(fixture.fs.uploads.all().isEmpty)
    }

    @Test func aTemporaryNameIsAnUploadUntilItsRenameOntoTheDigest() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let temporary = ".\(digest).x9Y8z7"
        #expect(try fixture.write(bytes, as: temporary, in: blobs) == nil)
        // Released, and still there: listed and looked up as an upload.
        let upload = try #require(try fixture.fs.lookup(parent: blobs, name: temporary))
        guard case .upload = upload.node else { Issue.record("not an upload: \(upload.node)"); return }
        #expect(try fixture.fs.getattr(ino: upload.ino).attributes.size == Int64(bytes.count))
        try fixture.fs.rename(parent: blobs, name: temporary, newParent: blobs, newName: digest.description, flags: 0)
        #expect(try fixture.fs.lookup(parent: blobs, name: temporary) == nil)
        let blob = try #require(try fixture.fs.lookup(parent: blobs, name: digest.description))
        #expect(try fixture.contents(of: blob.ino, size: 100) == bytes)
    }

    @Test func unlinkOfAnUploadCancelsIt() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let temporary = ".\(digest).q1w2e3"
        #expect(try fixture.write(bytes, as: temporary, in: blobs) == nil)
        try fixture.fs.unlink(parent: blobs, name: temporary)
        #expect(try fixture.fs.lookup(parent: blobs, name: temporary) == nil)
        #expect(fixture.fs.uploads.all().isEmpty)
        #expect(errnoOf { try fixture.fs.unlink(parent: blobs, name: temporary) } == ENOENT)
    }

    @Test func namesThatCanNeverBecomeBlobsAreRefused() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        #expect(errnoOf { try fixture.fs.create(parent: blobs, name: "layer.tar.gz") } == EINVAL)
        #expect(errnoOf { try fixture.fs.create(parent: blobs, name: "sha256:ABC") } == EINVAL)
        #expect(errnoOf { try fixture.fs.create(parent: try fixture.inode("repo/app"), name: digest.description) } == EPERM)
        #expect(errnoOf { try fixture.fs.mknod(parent: blobs, name: "fifo", mode: S_IFIFO | 0o644) } == EPERM)
        #expect(errnoOf { try fixture.fs.symlink(target: "/etc/passwd", parent: blobs, name: "link") } == EPERM)
        #expect(fixture.fs.uploads.all().isEmpty && fixture.fs.handles.count == 0)
    }

    @Test func anUploadRenamesOnlyOntoADigestInItsOwnDirectory() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        try fixture.push(Array("base".utf8), to: "web")
        let blobs = try fixture.inode("repo/app/blobs")
        let temporary = ".\(digest).k3j4h5"
        #expect(try fixture.write(bytes, as: temporary, in: blobs) == nil)
        let fs = fixture.fs
        #expect(errnoOf { try fs.rename(parent: blobs, name: temporary, newParent: blobs, newName: ".\(digest).zzzzzz", flags: 0) } == EPERM)
        #expect(errnoOf { try fs.rename(parent: blobs, name: temporary, newParent: blobs, newName: "final.tar", flags: 0) } == EINVAL)
        let other = try fixture.inode("repo/web/blobs")
        #expect(errnoOf { try fs.rename(parent: blobs, name: temporary, newParent: other, newName: self.digest.description, flags: 0) } == EPERM)
        #expect(errnoOf { try fs.rename(parent: blobs, name: temporary, newParent: blobs, newName: self.digest.description, flags: 2) } == EINVAL)
        // Blobs themselves never move.
        let base = Digester.digest(of: Array("base".utf8))
        #expect(errnoOf { try fs.rename(parent: blobs, name: base.description, newParent: blobs, newName: "x", flags: 0) } == EPERM)
        #expect(errnoOf { try fs.rename(parent: blobs, name: "absent", newParent: blobs, newName: "x", flags: 0) } == ENOENT)
    }

    @Test func anEmptyMknodUnderTheEmptyDigestIsCommittedAtOnce() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("base".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let empty = Digester.digest(of: [])
        let entry = try fixture.fs.mknod(parent: blobs, name: empty.description, mode: S_IFREG | 0o644)
        guard case .blob = entry.node else { Issue.record("not a blob: \(entry.node)"); return }
        #expect(entry.attributes.size == 0)
        #expect(errnoOf { try fixture.fs.mknod(parent: blobs, name: self.digest.description, mode: S_IFREG | 0o644) } == EIO)
        #expect(fixture.fs.uploads.all().isEmpty)
    }

    @Test func mkdirMakesNamePrefixesAndRepositoriesAndASectionAgainWithoutError() throws {
        let fixture = OperationFixture()
        let repo = try fixture.inode("repo")
        let team = try fixture.fs.mkdir(parent: repo, name: "team")
        #expect(errnoOf { try fixture.fs.mkdir(parent: repo, name: "team") } == EEXIST)
        #expect(errnoOf { try fixture.fs.mkdir(parent: repo, name: "Team Two") } == EINVAL)
        let app = try fixture.fs.mkdir(parent: team.ino, name: "app")
        _ = try fixture.fs.mkdir(parent: app.ino, name: "blobs")
        #expect(try fixture.registry.repositories().map(\.description) == ["team/app"])
        // A section that exists is made again without error (sections appear as side effects of
        // other writes, and cp -a makes each directory it copies without looking first).
        #expect(try fixture.fs.mkdir(parent: app.ino, name: "blobs").ino == (try fixture.inode("repo/team/app/blobs")))
        #expect(try fixture.registry.repositories().map(\.description) == ["team/app"])
        #expect(errnoOf { try fixture.fs.rmdir() } == EPERM)
    }

    /// cp -a copies a repository's children in its source's inode order: when `manifests/` comes
    /// first, the manifest it stores makes `blobs/` appear before cp's mkdir of it, which must not
    /// fail (it did: "cp: cannot create directory …/blobs: File exists").
    @Test func mkdirOfASectionThatAWriteMadeAppearSucceeds() throws {
        let fixture = OperationFixture(readWrite: true)
        let repo = try fixture.inode("repo")
        let app = try fixture.fs.mkdir(parent: repo, name: "app")
        let manifests = try fixture.fs.mkdir(parent: app.ino, name: "manifests")
        let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
        let digest = Digester.digest(of: manifest)
        let created = try fixture.fs.create(parent: manifests.ino, name: digest.description)
        _ = try manifest.withUnsafeBytes { try fixture.fs.write(handle: created.open.handle, bytes: $0, offset: 0) }
        try fixture.fs.flush(handle: created.open.handle)
        #expect(try fixture.registry.repository("app").manifests.linkTarget(digest) == digest)
        for section in ["blobs", "manifests", "tags"] {
            let made = try fixture.fs.mkdir(parent: app.ino, name: section)
            guard case .directory(let path) = made.node else { Issue.record("\(section): \(made.node)"); continue }
            #expect(path == "app/\(section)")
        }
    }

    @Test func unlinkOfABlobNeedsAllowDeleteAndRemovesOnlyTheLink() throws {
        for allowDelete in [false, true] {
            let fixture = OperationFixture(allowDelete: allowDelete)
            let digest = try fixture.push(bytes, to: "app")
            let blobs = try fixture.inode("repo/app/blobs")
            let result = errnoOf { try fixture.fs.unlink(parent: blobs, name: digest.description) }
            #expect(result == (allowDelete ? nil : EPERM))
            let linked = (try? fixture.registry.repository("app").blobs.linkTarget(digest)) != nil
            #expect(linked == !allowDelete)
            #expect(try fixture.registry.blobStore.get(digest) == bytes)  // the data stays for GC
        }
    }

    @Test func truncationExtendsUploadsAndOnlyEmptiesBlobs() throws {
        let fixture = OperationFixture()
        let digest = try fixture.push(bytes, to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let created = try fixture.fs.create(parent: blobs, name: ".\(digest).a1a1a1")
        defer { fixture.fs.release(handle: created.open.handle) }
        #expect(try fixture.fs.setattr(ino: created.entry.ino, size: 4096).attributes.size == 4096)
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        #expect(try fixture.fs.setattr(ino: blob, size: 0).attributes.size == Int64(bytes.count))
        #expect(errnoOf { try fixture.fs.setattr(ino: blob, size: 3) } == EINVAL)
    }

    @Test func aReadOnlyMountRefusesEveryMutation() throws {
        let fixture = OperationFixture(readWrite: false)
        let digest = try fixture.push(bytes, to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let fs = fixture.fs
        #expect(errnoOf { try fs.create(parent: blobs, name: self.digest.description) } == EROFS)
        #expect(errnoOf { try fs.mknod(parent: blobs, name: self.digest.description, mode: S_IFREG) } == EROFS)
        #expect(errnoOf { try fs.mkdir(parent: blobs, name: "x") } == EROFS)
        #expect(errnoOf { try fs.unlink(parent: blobs, name: digest.description) } == EROFS)
        #expect(errnoOf { try fs.rename(parent: blobs, name: digest.description, newParent: blobs, newName: "y", flags: 0) } == EROFS)
        #expect(errnoOf { try fs.rmdir() } == EROFS)
        #expect(errnoOf { try fs.symlink(target: "x", parent: blobs, name: "l") } == EROFS)
        #expect(errnoOf { try fs.setattr(ino: blobs, size: nil) } == EROFS)
        #expect(errnoOf { try fs.open(ino: try fixture.inode("repo/app/blobs/\(digest)"), flags: O_WRONLY | O_TRUNC) } == EROFS)
    }

    @Test func aBlobOpenedForWritingTakesOnlyItsOwnBytesAgain() throws {
        let fixture = OperationFixture()
        let digest = try fixture.push(bytes, to: "app")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        #expect(errnoOf { try fixture.fs.open(ino: blob, flags: O_WRONLY) } == EPERM)
        for (content, expected) in [(bytes, nil), (Array("different!!!".utf8), EIO)] as [([UInt8], Int32?)] {
            let opened = try fixture.fs.open(ino: blob, flags: O_WRONLY | O_TRUNC)
            _ = try content.withUnsafeBytes { try fixture.fs.write(handle: opened.handle, bytes: $0, offset: 0) }
            #expect(errnoOf { try fixture.fs.flush(handle: opened.handle) } == expected)
            fixture.fs.release(handle: opened.handle)
        }
        #expect(try fixture.contents(of: blob, size: 100) == bytes)
    }
}
