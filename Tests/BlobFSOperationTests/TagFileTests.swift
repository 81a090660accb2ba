@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// Regular files in a repository's `tags/` on a read-write mount, on an in-memory store: a file
/// holding a digest or a manifest's bytes becomes the tag (at close under the tag's name, at the
/// rename of rsync's temporary name), an empty one stays GNU tar's placeholder, anything else is
/// EINVAL and stores nothing.
@Suite struct TagFileTests {
    static let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#.utf8)
    static let digest = Digester.digest(of: manifest)

    /// A repository `app` with `tags/` made, as a restore's mkdir makes it.
    func fixture() throws -> (OperationFixture, tags: UInt64) {
        let fixture = OperationFixture(readWrite: true)
        try fixture.push(Array("{}".utf8), to: "app")
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo/app"), name: "tags")
        return (fixture, try fixture.inode("repo/app/tags"))
    }

    func expectTag(_ fixture: OperationFixture, _ tags: UInt64, _ name: String, points digest: Digest) throws {
        #expect(try fixture.registry.repository("app").tags.current(try Tag(name)) == digest)
        let entry = try #require(try fixture.fs.lookup(parent: tags, name: name))
        guard case .tag = entry.node else {
            Issue.record("\(name) is \(entry.node), not the tag's link")
            return
        }
        #expect(try fixture.fs.readlink(ino: entry.ino) == "../manifests/\(digest)")
        #expect(fixture.notices.forgottenEntries.contains("\(tags)/\(name)"), "the kernel forgets the file's entry")
    }

    @Test(arguments: ["", "\n"]) func aFileHoldingADigestTagsAtClose(newline: String) throws {
        let (fixture, tags) = try fixture()
        #expect(try fixture.write(Array("\(Self.digest)\(newline)".utf8), as: "v1", in: tags) == nil)
        // The manifest may arrive later, as with a symbolic link.
        try expectTag(fixture, tags, "v1", points: Self.digest)
        let name = TagName(repository: try RepositoryName("app"), tag: try Tag("v1"))
        #expect(fixture.fs.tagTargets.recent(name) == Self.digest)
        #expect(fixture.fs.uploads.all().isEmpty)
    }

    /// `rsync -L`, `cp -L`, `tar -h`: the tag's file holds the manifest itself.
    @Test func aFileHoldingAManifestStoresItAndTagsIt() throws {
        let (fixture, tags) = try fixture()
        #expect(try fixture.write(Self.manifest, as: "v1", in: tags) == nil)
        try expectTag(fixture, tags, "v1", points: Self.digest)
        let repository = try fixture.registry.repository("app")
        #expect(try repository.manifests.get(Self.digest) == Self.manifest)
        #expect(try fixture.contents(of: try fixture.inode("repo/app/manifests/\(Self.digest)"), size: 4096) == Self.manifest)
    }

    /// GNU tar's placeholder: empty at its close, shown in this mount until the unlink that
    /// replaces it by its link.
    @Test func anEmptyFileStaysAPlaceholderUntilItsUnlink() throws {
        let (fixture, tags) = try fixture()
        #expect(try fixture.write([], as: "v1", in: tags) == nil)
        let placeholder = try #require(try fixture.fs.lookup(parent: tags, name: "v1"))
        guard case .upload = placeholder.node else {
            Issue.record("\(placeholder.node)")
            return
        }
        #expect(try fixture.registry.repository("app").tags.current(try Tag("v1")) == nil)
        try fixture.fs.unlink(parent: tags, name: "v1")
        _ = try fixture.fs.symlink(target: "../manifests/\(Self.digest)", parent: tags, name: "v1")
        try expectTag(fixture, tags, "v1", points: Self.digest)
    }

    /// Anything else fails close with EINVAL and stores nothing; the file stays open, and a later
    /// close after more writes decides again, as a blob's upload does. Its last close drops it.
    @Test func otherContentIsRefusedAtCloseAndDecidedAgainAfterMoreWrites() throws {
        let (fixture, tags) = try fixture()
        let before = try fixture.driver.allFiles()
        let created = try fixture.fs.create(parent: tags, name: "v1")
        func write(_ text: String, at offset: Int64) throws {
            _ = try Array(text.utf8).withUnsafeBytes { try fixture.fs.write(handle: created.open.handle, bytes: $0, offset: offset) }
        }
        try write("sha256:", at: 0)
        #expect(errnoOf { try fixture.fs.flush(handle: created.open.handle) } == EINVAL)
        #expect(try fixture.driver.allFiles().filter { !$0.contains("/_uploads/") } == before, "nothing stored")
        try write(Self.digest.hex, at: 7)
        try fixture.fs.flush(handle: created.open.handle)
        fixture.fs.release(handle: created.open.handle)
        try expectTag(fixture, tags, "v1", points: Self.digest)

        // Refused at its last close: dropped, nothing stored.
        #expect(try fixture.write(Array("not a tag".utf8), as: "v2", in: tags).map(errnoValue) == EINVAL)
        #expect(try fixture.fs.lookup(parent: tags, name: "v2") == nil)
        #expect(try fixture.registry.repository("app").tags.current(try Tag("v2")) == nil)
        #expect(fixture.fs.uploads.all().isEmpty)
        // A digest of another algorithm than sha256 is no tag either.
        let sha512 = Digester.digest(of: Self.manifest, algorithm: .sha512)
        #expect(try fixture.write(Array(sha512.description.utf8), as: "v3", in: tags).map(errnoValue) == EINVAL)
        #expect(try fixture.fs.lookup(parent: tags, name: "v3") == nil)
    }

    /// rsync writes `.<tag>.XXXXXX` and renames it onto the tag: the rename decides.
    @Test func rsyncsTemporaryNameTagsAtItsRename() throws {
        let (fixture, tags) = try fixture()
        #expect(try fixture.write(Self.manifest, as: ".v1.AbC123", in: tags) == nil)
        #expect(try fixture.registry.repository("app").tags.current(try Tag("v1")) == nil, "nothing before the rename")
        #expect(try fixture.fs.lookup(parent: tags, name: ".v1.AbC123") != nil)
        try fixture.fs.rename(parent: tags, name: ".v1.AbC123", newParent: tags, newName: "v1", flags: 0)
        try expectTag(fixture, tags, "v1", points: Self.digest)
        #expect(try fixture.fs.lookup(parent: tags, name: ".v1.AbC123") == nil)

        // Content that cannot be a tag (or an empty file): the rename fails, the file is gone.
        for (name, bytes) in [(".v2.XyZ789", Array("garbage".utf8)), (".v3.q1w2e3", [])] {
            #expect(try fixture.write(bytes, as: name, in: tags) == nil)
            let tag = String(name.dropFirst().prefix(2))
            #expect(errnoOf { try fixture.fs.rename(parent: tags, name: name, newParent: tags, newName: tag, flags: 0) } == EINVAL)
            #expect(try fixture.fs.lookup(parent: tags, name: name) == nil)
            #expect(try fixture.registry.repository("app").tags.current(try Tag(tag)) == nil)
        }
        // Renamed onto no tag, or onto another temporary name: refused, the file stays.
        #expect(try fixture.write(Array(Self.digest.description.utf8), as: ".v4.aaaaaa", in: tags) == nil)
        #expect(errnoOf { try fixture.fs.rename(parent: tags, name: ".v4.aaaaaa", newParent: tags, newName: "-v4", flags: 0) } == EINVAL)
        #expect(errnoOf { try fixture.fs.rename(parent: tags, name: ".v4.aaaaaa", newParent: tags, newName: ".v4.bbbbbb", flags: 0) } == EPERM)
        try fixture.fs.rename(parent: tags, name: ".v4.aaaaaa", newParent: tags, newName: "v4", flags: 0)
        try expectTag(fixture, tags, "v4", points: Self.digest)
    }

    /// `tar -h` archives a tag whose manifest it holds already as a hard link to it: link(2) of
    /// a manifest into `tags/` tags it; the other way round, a tag (its file came first and made
    /// the tag) linked into `manifests/` under its digest is the revision already stored. Each
    /// reply is the source's own inode, as a hard link's is.
    @Test func hardLinksBetweenManifestsAndTagsTagOrAreTheRevision() throws {
        let (fixture, tags) = try fixture()
        let repository = try fixture.registry.repository("app")
        try repository.manifests.put(Self.manifest, as: Self.digest)
        let manifestIno = try fixture.inode("repo/app/manifests/\(Self.digest)")
        let linked = try fixture.fs.link(ino: manifestIno, newParent: tags, newName: "v1")
        #expect(linked.ino == manifestIno)
        #expect(fixture.notices.forgottenEntries.contains("\(tags)/v1"))
        try expectTag(fixture, tags, "v1", points: Self.digest)

        // The tag first (a file holding the manifest), then the manifest as a link to it.
        let other = OperationFixture(readWrite: true)
        try other.push(Array("{}".utf8), to: "app")
        _ = try other.fs.mkdir(parent: try other.inode("repo/app"), name: "tags")
        _ = try other.fs.mkdir(parent: try other.inode("repo/app"), name: "manifests")
        let otherTags = try other.inode("repo/app/tags")
        #expect(try other.write(Self.manifest, as: "v1", in: otherTags) == nil)
        let tagIno = try other.inode("repo/app/tags/v1")
        let manifests = try other.inode("repo/app/manifests")
        #expect(try other.fs.link(ino: tagIno, newParent: manifests, newName: Self.digest.description).ino == tagIno)
        _ = try other.fs.link(ino: tagIno, newParent: otherTags, newName: "v2")
        #expect(try other.registry.repository("app").tags.current(try Tag("v2")) == Self.digest)

        // Another name than the digest in manifests/, no tag name in tags/, a manifest that is
        // not stored, another repository: refused.
        let wrong = Digester.digest(of: Array("x".utf8)).description
        #expect(errnoOf { try other.fs.link(ino: tagIno, newParent: manifests, newName: wrong) } == EPERM)
        #expect(errnoOf { try fixture.fs.link(ino: manifestIno, newParent: tags, newName: "-v1") } == EINVAL)
        try fixture.push(Array("{}".utf8), to: "elsewhere")
        _ = try fixture.fs.mkdir(parent: try fixture.inode("repo/elsewhere"), name: "tags")
        #expect(errnoOf { try fixture.fs.link(ino: manifestIno, newParent: try fixture.inode("repo/elsewhere/tags"), newName: "v1") } == EPERM)
        #expect(errnoOf { try fixture.fs.link(ino: try fixture.inode("repo/app/blobs"), newParent: tags, newName: "v9") } == EPERM)
    }

    @Test func namesThatAreNeitherATagNorItsTemporaryNameAreRefused() throws {
        let (fixture, tags) = try fixture()
        for name in ["-v1", ".v1", ".v1.abc", ".-v1.AbC123", "v1:x"] {
            #expect(errnoOf { try fixture.fs.create(parent: tags, name: name) } == EINVAL, "\(name)")
        }
        #expect(TagFileName.classify("v1.2") == .tag(try Tag("v1.2")))
        #expect(TagFileName.classify(".v1.2.AbC123") == .temporary)
    }
}

extension InMemoryDriver {
    /// Every file below the store's root.
    func allFiles() throws -> [String] {
        var paths: [String] = []
        do {
            try walk(try DriverPath("/docker")) { entry in
                if entry.kind != .directory { paths.append(entry.path.value) }
                return .continue
            }
        } catch StorageDriverError.pathNotFound {}
        return paths.sorted()
    }
}
