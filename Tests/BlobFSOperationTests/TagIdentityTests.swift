@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// A tag's node is the tag as it named one manifest (Node.tag), so that the kernel may cache a
/// symbolic link's target for as long as it keeps the inode (FUSE_CAP_CACHE_SYMLINKS): a moved
/// tag is another inode at its next lookup or listing, and an inode whose tag moved away makes
/// the kernel forget the name and that inode's cached target.
@Suite struct TagIdentityTests {
    func manifest(_ n: Int) -> [UInt8] {
        Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"annotations":{"n":"\#(n)"}}"#.utf8)
    }

    /// A repository `app` with manifests 1 and 2, and the tag `v1` on 1.
    func fixture(directoryTimeout: Double) throws -> (OperationFixture, first: Digest, second: Digest) {
        let fixture = OperationFixture(readWrite: false, directoryTimeout: directoryTimeout)
        try fixture.push(Array("{}".utf8), to: "app")
        let repository = try fixture.registry.repository("app")
        let first = try repository.manifests.put(manifest(1), as: Digester.digest(of: manifest(1))).digest
        let second = try repository.manifests.put(manifest(2), as: Digester.digest(of: manifest(2))).digest
        try repository.tags.tag(try Tag("v1"), to: first)
        return (fixture, first, second)
    }

    @Test func aMovedTagIsAnotherInodeAtItsNextLookupAndListing() throws {
        let (fixture, first, second) = try fixture(directoryTimeout: 0)
        let tags = try fixture.inode("repo/app/tags")
        let before = try #require(try fixture.fs.lookup(parent: tags, name: "v1"))
        #expect(try fixture.fs.lookup(parent: tags, name: "v1")?.ino == before.ino, "the same tag on the same manifest is the same inode")
        try fixture.registry.repository("app").tags.tag(try Tag("v1"), to: second)
        let after = try #require(try fixture.fs.lookup(parent: tags, name: "v1"))
        #expect(after.ino != before.ino)
        #expect(try fixture.fs.readlink(ino: after.ino) == "../manifests/\(second)")
        // A listing gives the moved tag's inode too.
        let opened = try fixture.fs.opendir(ino: tags)
        defer { fixture.fs.releasedir(handle: opened.handle) }
        let listed = try fixture.fs.readdir(handle: opened.handle, offset: 0, size: 1 << 16, plus: true).first { $0.name == "v1" }
        #expect(listed?.ino == after.ino)
        // Moved back: the first manifest's node again, a new inode once the old one was forgotten.
        fixture.fs.forget(before.ino, count: 2)
        try fixture.registry.repository("app").tags.tag(try Tag("v1"), to: first)
        let back = try #require(try fixture.fs.lookup(parent: tags, name: "v1"))
        #expect(back.ino != before.ino && back.ino != after.ino)
        #expect(try fixture.fs.readlink(ino: back.ino) == "../manifests/\(first)")
    }

    @Test func aReadlinkOfAnInodeWhoseTagMovedMakesTheKernelForgetTheNameAndItsCachedTarget() throws {
        let (fixture, first, second) = try fixture(directoryTimeout: 0)
        let tags = try fixture.inode("repo/app/tags")
        let ino = try fixture.inode("repo/app/tags/v1")
        #expect(try fixture.fs.readlink(ino: ino) == "../manifests/\(first)")
        #expect(fixture.notices.forgottenEntries.isEmpty && fixture.notices.droppedPages.isEmpty, "an inode whose tag is where it was")
        try fixture.registry.repository("app").tags.tag(try Tag("v1"), to: second)
        // The old inode answers where the tag is now, and the kernel is told to look it up again.
        #expect(try fixture.fs.readlink(ino: ino) == "../manifests/\(second)")
        #expect(fixture.notices.forgottenEntries == ["\(tags)/v1"])
        #expect(fixture.notices.droppedPages == [ino])
    }

    @Test func withinTheTimeoutAReadlinkAnswersWhatTheListingReadWithoutNotices() throws {
        let (fixture, first, second) = try fixture(directoryTimeout: 60)
        let tags = try fixture.inode("repo/app/tags")
        let opened = try fixture.fs.opendir(ino: tags)
        let listed = try #require(try fixture.fs.readdir(handle: opened.handle, offset: 0, size: 1 << 16, plus: true).first { $0.name == "v1" })
        fixture.fs.releasedir(handle: opened.handle)
        try fixture.registry.repository("app").tags.tag(try Tag("v1"), to: second)
        #expect(try fixture.fs.readlink(ino: listed.ino) == "../manifests/\(first)")
        #expect(fixture.notices.forgottenEntries.isEmpty && fixture.notices.droppedPages.isEmpty)
    }
}
