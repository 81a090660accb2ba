@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// `manifests/` and `tags/` of a repository, and the `@` spelling of reserved components, on an
/// in-memory store.
@Suite struct ImageTreeTests {
    let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#.utf8)

    /// A repository `app` with one blob, the manifest, and the tag `v1` on it.
    func fixture(directoryTimeout: Double = 1) throws -> (OperationFixture, Digest) {
        let fixture = OperationFixture(readWrite: false, directoryTimeout: directoryTimeout)
        try fixture.push(Array("{}".utf8), to: "app")
        let repository = try fixture.registry.repository("app")
        let digest = try repository.manifests.put(manifest, as: Digester.digest(of: manifest)).digest
        try repository.tags.tag(try Tag("v1"), to: digest)
        return (fixture, digest)
    }

    @Test func aRepositoryShowsItsManifestsAndTags() throws {
        let (fixture, digest) = try fixture()
        #expect(try names(fixture, "repo/app") == [".", "..", "blobs", "manifests", "tags"])
        #expect(try names(fixture, "repo/app/manifests") == [".", "..", digest.description])
        #expect(try names(fixture, "repo/app/tags") == [".", "..", "v1"])
        // The manifest is no blob of the repository.
        #expect(!(try names(fixture, "repo/app/blobs")).contains(digest.description))
    }

    @Test func aManifestReadsAsItsBytesAndCarriesItsServedMediaType() throws {
        let (fixture, digest) = try fixture()
        let ino = try fixture.inode("repo/app/manifests/\(digest)")
        #expect(fixture.fs.stat(try fixture.fs.getattr(ino: ino)).st_mode == S_IFREG | 0o444)
        #expect(try fixture.contents(of: ino, size: 4096) == manifest)
        let mediaType = try fixture.fs.getxattr(ino: ino, name: "user.blobfs.mediatype", size: 4096)
        #expect(mediaType == .bytes(Array("application/vnd.oci.image.manifest.v1+json".utf8)))
    }

    @Test func aTagIsASymbolicLinkToItsManifestThatFollowsTagMoves() throws {
        // No directory timeout: readlink reads the tag's current link every time.
        let (fixture, digest) = try fixture(directoryTimeout: 0)
        let ino = try fixture.inode("repo/app/tags/v1")
        let st = fixture.fs.stat(try fixture.fs.getattr(ino: ino))
        let target = "../manifests/\(digest)"
        #expect(st.st_mode == S_IFLNK | 0o777 && st.st_size == target.utf8.count)
        #expect(try fixture.fs.readlink(ino: ino) == target)
        // The registry moves the tag: the same inode now points at the new manifest.
        let other = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"annotations":{"v":"2"}}"#.utf8)
        let repository = try fixture.registry.repository("app")
        let moved = try repository.manifests.put(other, as: Digester.digest(of: other)).digest
        try repository.tags.tag(try Tag("v1"), to: moved)
        #expect(try fixture.fs.readlink(ino: ino) == "../manifests/\(moved)")
        // An untagged tag is gone.
        let tags = try fixture.inode("repo/app/tags")
        try repository.tags.untag(try Tag("v1"))
        #expect(errnoOf { try fixture.fs.readlink(ino: ino) } == ENOENT)
        #expect(try fixture.fs.lookup(parent: tags, name: "v1") == nil)
    }

    @Test func aTagReadByALookupIsNotReadAgainByReadlinkWithinTheTimeout() throws {
        let (fixture, digest) = try fixture(directoryTimeout: 60)
        let ino = try fixture.inode("repo/app/tags/v1")
        // The store loses the tag; within the timeout readlink still answers what the lookup read,
        // as the kernel keeps the entry itself for that long.
        try fixture.driver.delete(PathMapper.path(.manifestTag(try RepositoryName("app"), try Tag("v1"))))
        #expect(try fixture.fs.readlink(ino: ino) == "../manifests/\(digest)")
    }

    @Test func namesThatAreNotRevisionsOrTagsAreNotThere() throws {
        let (fixture, _) = try fixture()
        let manifests = try fixture.inode("repo/app/manifests")
        let blob = Digester.digest(of: Array("{}".utf8))
        // A blob linked in _layers is not a manifest revision.
        #expect(try fixture.fs.lookup(parent: manifests, name: blob.description) == nil)
        #expect(try fixture.fs.lookup(parent: manifests, name: "sha512:" + String(repeating: "a", count: 128)) == nil)
        let tags = try fixture.inode("repo/app/tags")
        #expect(try fixture.fs.lookup(parent: tags, name: "v2") == nil)
        #expect(try fixture.fs.lookup(parent: tags, name: ".hidden") == nil)
        #expect(errnoOf { try fixture.fs.open(ino: try fixture.inode("repo/app/tags/v1"), flags: O_RDONLY) } == EINVAL)
    }

    @Test func reservedComponentsAreSpelledWithAnAt() throws {
        let fixture = OperationFixture(readWrite: true)
        for name in ["team", "team/blobs", "team/tags/app", "manifests"] { try fixture.push(Array(name.utf8), to: name) }
        #expect(try names(fixture, "repo") == [".", "..", "@manifests", "team"])
        #expect(try names(fixture, "repo/team") == [".", "..", "@blobs", "@tags", "blobs"])
        #expect(try names(fixture, "repo/team/@blobs/blobs").count == 3)
        #expect(try names(fixture, "repo/team/@tags/app/blobs").count == 3)
        // Bare reserved words are sections or nothing; the spelled form is the component.
        #expect(try fixture.fs.lookup(parent: try fixture.inode("repo"), name: "manifests") == nil)
        #expect(try fixture.fs.lookup(parent: try fixture.inode("repo"), name: "@team") == nil)
        // mkdir takes the same spelling.
        let repo = try fixture.inode("repo")
        #expect(errnoOf { try fixture.fs.mkdir(parent: repo, name: "tags") } == EINVAL)
        let tagsPrefix = try fixture.fs.mkdir(parent: repo, name: "@tags")
        _ = try fixture.fs.mkdir(parent: tagsPrefix.ino, name: "blobs")
        #expect(try fixture.registry.repositories().map(\.description).contains("tags"))
        #expect(errnoOf { try fixture.fs.mkdir(parent: try fixture.inode("repo/team/blobs"), name: "x") } == EPERM)
    }

    @Test func aLinkMadeUnderATemporaryNameTagsAtItsRename() throws {
        let fixture = OperationFixture(readWrite: true, allowDelete: false)
        try fixture.push(Array("{}".utf8), to: "app")
        let repository = try fixture.registry.repository("app")
        let digest = try repository.manifests.put(manifest, as: Digester.digest(of: manifest)).digest
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo/app"), name: "tags")
        let tags = try fixture.inode("repo/app/tags")
        let pending = try fixture.fs.symlink(target: "../manifests/\(digest)", parent: tags, name: ".v1.4242")
        #expect(try fixture.fs.readlink(ino: pending.ino) == "../manifests/\(digest)")
        #expect(try repository.tags.current(try Tag("v1")) == nil)  // nothing tagged before the rename
        try fixture.fs.rename(parent: tags, name: ".v1.4242", newParent: tags, newName: "v1", flags: 0)
        #expect(try repository.tags.current(try Tag("v1")) == digest)
        #expect(try fixture.fs.lookup(parent: tags, name: ".v1.4242") == nil)
        // A temporary link that is unlinked instead leaves nothing.
        _ = try fixture.fs.symlink(target: "../manifests/\(digest)", parent: tags, name: ".v2.1")
        try fixture.fs.unlink(parent: tags, name: ".v2.1")
        #expect(try fixture.fs.lookup(parent: tags, name: ".v2.1") == nil)
        #expect(try repository.tags.current(try Tag("v2")) == nil)
        // Renamed onto no tag, or out of tags/: refused.
        _ = try fixture.fs.symlink(target: "../manifests/\(digest)", parent: tags, name: ".v3.1")
        #expect(errnoOf { try fixture.fs.rename(parent: tags, name: ".v3.1", newParent: tags, newName: "-x", flags: 0) } == EINVAL)
    }

    @Test func aManifestWrittenUnderItsDigestIsARevisionNeverABlob() throws {
        let fixture = OperationFixture(readWrite: true)
        try fixture.push(Array("{}".utf8), to: "app")
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo/app"), name: "manifests")
        let manifests = try fixture.inode("repo/app/manifests")
        let digest = Digester.digest(of: manifest)
        #expect(try fixture.write(manifest, as: digest.description, in: manifests) == nil)
        let repository = try fixture.registry.repository("app")
        #expect(try repository.manifests.get(digest) == manifest)
        #expect((try? repository.blobs.linkTarget(digest)) == nil, "a manifest is never linked in _layers")
        #expect(try fixture.contents(of: try fixture.inode("repo/app/manifests/\(digest)"), size: 4096) == manifest)
    }

    @Test func aManifestThatDoesNotMatchItsNameIsTooLargeOrNotSHA256IsRefused() throws {
        let fixture = OperationFixture(readWrite: true)
        try fixture.push(Array("{}".utf8), to: "app")
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo/app"), name: "manifests")
        let manifests = try fixture.inode("repo/app/manifests")
        let digest = Digester.digest(of: manifest)
        let wrong = try #require(try fixture.write(Array("not the manifest".utf8), as: digest.description, in: manifests))
        #expect(errnoValue(for: wrong) == EIO)
        #expect(try fixture.fs.lookup(parent: manifests, name: digest.description) == nil)
        let sha512 = Digester.digest(of: manifest, algorithm: .sha512)
        #expect(errnoOf { try fixture.fs.create(parent: manifests, name: sha512.description) } == EINVAL)
        let huge = [UInt8](repeating: 0x20, count: (4 << 20) + 1)
        let created = try fixture.fs.create(parent: manifests, name: Digester.digest(of: huge).description)
        defer { fixture.fs.release(handle: created.open.handle) }
        #expect(errnoOf { try huge.withUnsafeBytes { try fixture.fs.write(handle: created.open.handle, bytes: $0, offset: 0) } } == EFBIG)
    }

    @Test func aBlobSharedByRepositoriesIsOneInodeNumberWithANameCount() throws {
        let fixture = OperationFixture(readWrite: true, hardLinks: true)
        let shared = Array("a base layer".utf8)
        let digest = try fixture.push(shared, to: "one")
        try fixture.push(shared, to: "two")
        let alone = try fixture.push(Array("only in one".utf8), to: "one")
        func stat(_ path: String) throws -> Glibc.stat { fixture.fs.stat(try fixture.fs.getattr(ino: try fixture.inode(path))) }
        let (a, b, c) = (try stat("repo/one/blobs/\(digest)"), try stat("repo/two/blobs/\(digest)"), try stat("repo/one/blobs/\(alone)"))
        #expect(a.st_ino == b.st_ino && a.st_nlink == 2 && b.st_nlink == 2)
        #expect(c.st_ino != a.st_ino && c.st_nlink == 1)
        // The node numbers stay apart (an open re-checks each repository's own link).
        #expect(try fixture.inode("repo/one/blobs/\(digest)") != (try fixture.inode("repo/two/blobs/\(digest)")))
        // link(2) into a third repository mounts the blob there: a third name.
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo"), name: "three")
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo/three"), name: "blobs")
        let linked = try fixture.fs.link(ino: try fixture.inode("repo/one/blobs/\(digest)"), newParent: try fixture.inode("repo/three/blobs"), newName: digest.description)
        #expect(fixture.fs.stat(try fixture.fs.getattr(ino: linked.ino)).st_nlink == 3)
        #expect(try fixture.registry.repository("three").blobs.linkTarget(digest) == digest)
        // A name the blob does not have, or a link of something else: EPERM.
        #expect(errnoOf { try fixture.fs.link(ino: try fixture.inode("repo/one/blobs/\(digest)"), newParent: try fixture.inode("repo/three/blobs"), newName: alone.description) } == EPERM)
        #expect(errnoOf { try fixture.fs.link(ino: try fixture.inode("repo/one"), newParent: try fixture.inode("repo/three/blobs"), newName: digest.description) } == EPERM)
    }

    @Test func theOCIIndexListsTagsWithTheirTrueMediaTypeThenUntaggedRoots() throws {
        let fixture = OperationFixture(readWrite: false, ociView: true)
        try fixture.push(Array("{}".utf8), to: "app")
        let repository = try fixture.registry.repository("app")
        let oci = try repository.manifests.put(manifest, as: Digester.digest(of: manifest)).digest
        let docker = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#.utf8)
        let dockerDigest = try repository.manifests.put(docker, as: Digester.digest(of: docker)).digest
        let child = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"annotations":{"child":"1"}}"#.utf8)
        let childDigest = try repository.manifests.put(child, as: Digester.digest(of: child)).digest
        let indexBytes = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":\#(child.count),"digest":"\#(childDigest)"}]}"#.utf8)
        let untaggedIndex = try repository.manifests.put(indexBytes, as: Digester.digest(of: indexBytes)).digest
        try repository.tags.tag(try Tag("v1"), to: oci)
        try repository.tags.tag(try Tag("docker"), to: dockerDigest)

        #expect(try names(fixture, "oci/app") == [".", "..", "blobs", "index.json", "oci-layout"])
        let ino = try fixture.inode("oci/app/index.json")
        let index = String(decoding: try fixture.contents(of: ino, size: 1 << 16), as: UTF8.self)
        #expect(index == #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#
            + #"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\#(dockerDigest)","size":\#(docker.count),"annotations":{"org.opencontainers.image.ref.name":"docker"}},"#
            + #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(oci)","size":\#(manifest.count),"annotations":{"org.opencontainers.image.ref.name":"v1"}},"#
            + #"{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"\#(untaggedIndex)","size":\#(indexBytes.count)}]}"#)
        #expect(fixture.fs.stat(try fixture.fs.getattr(ino: ino)).st_size == index.utf8.count)
        // blobs/sha256/<hex>: the repository's blobs and manifests, the same nodes as under repo/.
        let files = try names(fixture, "oci/app/blobs/sha256")
        #expect(files.contains(oci.hex) && files.contains(childDigest.hex) && files.contains(Digester.digest(of: Array("{}".utf8)).hex))
        #expect(try fixture.inode("oci/app/blobs/sha256/\(oci.hex)") == (try fixture.inode("repo/app/manifests/\(oci)")))
        // No oci/ without --oci.
        #expect(try OperationFixture().fs.lookup(parent: InodeTable.rootID, name: "oci") == nil)
    }

    @Test func aBlobTakesItsMediaTypeFromTheManifestsThatNameIt() throws {
        let (fixture, _) = try fixture()
        // The fixture's manifest names its config (the blob "{}") as an OCI config.
        let config = Digester.digest(of: Array("{}".utf8))
        let ino = try fixture.inode("repo/app/blobs/\(config)")
        #expect(try fixture.fs.getxattr(ino: ino, name: "user.blobfs.mediatype", size: 4096) == .bytes(Array("application/vnd.oci.image.config.v1+json".utf8)))
        let lone = try fixture.push(Array("named by no manifest".utf8), to: "app")
        let loneIno = try fixture.inode("repo/app/blobs/\(lone)")
        #expect(try fixture.fs.getxattr(ino: loneIno, name: "user.blobfs.mediatype", size: 4096) == .bytes(Array("application/octet-stream".utf8)))
    }

    private func names(_ fixture: OperationFixture, _ path: String) throws -> [String] {
        let opened = try fixture.fs.opendir(ino: try fixture.inode(path))
        defer { fixture.fs.releasedir(handle: opened.handle) }
        return try fixture.fs.readdir(handle: opened.handle, offset: 0, size: 1 << 16, plus: false).map(\.name)
    }
}
