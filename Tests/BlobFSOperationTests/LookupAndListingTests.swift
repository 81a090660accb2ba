@testable import BlobFS
import CFuse
import Distribution
import Glibc
import Storage
import StorageDriver
import TestSupport
import Testing

/// lookup, getattr, opendir/readdir and extended attributes, on an in-memory store.
@Suite struct LookupAndListingTests {
    @Test func theTreeIsRepoThenNameComponentsThenBlobs() throws {
        let fixture = OperationFixture(readWrite: false)
        let bytes = Array("layer".utf8)
        let digest = try fixture.push(bytes, to: "team/app")
        let blobs = try fixture.inode("repo/team/app/blobs")
        let entry = try #require(try fixture.fs.lookup(parent: blobs, name: digest.description))
        guard case .blob(let name) = entry.node else { Issue.record("not a blob: \(entry.node)"); return }
        #expect(name.repository.description == "team/app" && name.digest == digest)
        #expect(entry.attributes.size == Int64(bytes.count))
        #expect(entry.attributes.descriptor?.digest == digest)
        let attributes = try fixture.fs.getattr(ino: entry.ino)
        #expect(fixture.fs.stat(attributes).st_mode == S_IFREG | 0o444)
    }

    @Test func namesThatAreNotThereAreNegativeEntries() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("a".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let absent = Digester.digest(of: Array("b".utf8))
        #expect(try fixture.fs.lookup(parent: blobs, name: absent.description) == nil)
        #expect(try fixture.fs.lookup(parent: blobs, name: "sha256:nothex") == nil)
        #expect(try fixture.fs.lookup(parent: InodeTable.rootID, name: "other") == nil)
        #expect(try fixture.fs.lookup(parent: try fixture.inode("repo"), name: "Upper") == nil)
    }

    @Test func lookupsOutsideDirectoriesFail() throws {
        let fixture = OperationFixture()
        let digest = try fixture.push(Array("a".utf8), to: "app")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        #expect(errnoOf { try fixture.fs.lookup(parent: blob, name: "x") } == ENOTDIR)
        #expect(errnoOf { try fixture.fs.lookup(parent: 999_999, name: "x") } == ENOENT)
        #expect(errnoOf { try fixture.fs.getattr(ino: 999_999) } == ENOENT)
    }

    @Test func aRepositoryListsBlobsAndANamePrefixItsComponents() throws {
        let fixture = OperationFixture()
        let one = try fixture.push(Array("one".utf8), to: "team/app")
        let two = try fixture.push(Array("two".utf8), to: "team/app")
        try fixture.push(Array("three".utf8), to: "team/web")
        #expect(try names(fixture, "repo/team") == [".", "..", "app", "web"])
        #expect(try names(fixture, "repo/team/app") == [".", "..", "blobs"])
        #expect(try names(fixture, "repo/team/app/blobs") == [".", "..", one.description, two.description].sortedDigestsLast())
    }

    @Test func aListingLeavesOutEmptyDanglingAndCorruptLinks() throws {
        let fixture = OperationFixture()
        let kept = try fixture.push(Array("kept".utf8), to: "app")
        let dangling = try fixture.push(Array("gone".utf8), to: "app")
        let empty = try fixture.push(Array("empty".utf8), to: "app")
        let corrupt = try fixture.push(Array("corrupt".utf8), to: "app")
        let app = try RepositoryName("app")
        try fixture.driver.delete(PathMapper.path(.blob(dangling)))  // a GC took the data
        try fixture.driver.putContent(PathMapper.path(.layerLink(app, empty)), [])
        try fixture.driver.putContent(PathMapper.path(.layerLink(app, corrupt)), Array("garbage".utf8))
        #expect(try names(fixture, "repo/app/blobs") == [".", "..", kept.description])
    }

    @Test func aPlainListingBorrowsInodesAndAPlusListingCountsOneLookupEach() throws {
        let fixture = OperationFixture()
        let digest = try fixture.push(Array("one".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let opened = try fixture.fs.opendir(ino: blobs)
        defer { fixture.fs.releasedir(handle: opened.handle) }

        let plain = try fixture.fs.readdir(handle: opened.handle, offset: 0, size: 4096, plus: false)
        let plainBlob = try #require(plain.first { $0.name == digest.description })
        #expect(!plainBlob.countsLookup)
        #expect(fixture.fs.inodes[plainBlob.ino] == nil)  // not held: the kernel counted no lookup

        let plus = try fixture.fs.readdir(handle: opened.handle, offset: 0, size: 4096, plus: true)
        let plusBlob = try #require(plus.first { $0.name == digest.description })
        #expect(plusBlob.countsLookup)
        #expect(fixture.fs.inodes[plusBlob.ino] != nil)
        // The kernel did not receive the listing: its lookups are taken back.
        fixture.fs.listingNotDelivered(plus[...])
        #expect(fixture.fs.inodes[plusBlob.ino] == nil)
    }

    @Test func aListingServesWhatFitsAndContinuesFromItsOffset() throws {
        let fixture = OperationFixture()
        for i in 0..<20 { try fixture.push(Array("blob \(i)".utf8), to: "app") }
        let blobs = try fixture.inode("repo/app/blobs")
        let opened = try fixture.fs.opendir(ino: blobs)
        defer { fixture.fs.releasedir(handle: opened.handle) }
        let digestEntry = DirectoryEntrySize.of("sha256:" + String(repeating: "0", count: 64), plus: true)
        let size = DirectoryEntrySize.of(".", plus: true) + DirectoryEntrySize.of("..", plus: true) + 3 * digestEntry
        var offset: Int64 = 0
        var seen: [String] = []
        while true {
            let page = try fixture.fs.readdir(handle: opened.handle, offset: offset, size: size + digestEntry - 1, plus: true)
            if page.isEmpty { break }
            #expect(page.reduce(0) { $0 + DirectoryEntrySize.of($1.name, plus: true) } <= size + digestEntry - 1)
            seen += page.map(\.name)
            offset = page.last!.nextOffset
            fixture.fs.listingNotDelivered(page[...])
        }
        #expect(seen.count == 22)
        #expect(Set(seen).count == 22)
    }

    @Test(arguments: ["", ".", "..", "blobs", "sha256:" + String(repeating: "a", count: 64), String(repeating: "n", count: 255)])
    func entrySizesAreLibfusesOwn(name: String) {
        // libfuse only measures when given no buffer (and never looks at the request then).
        #expect(fuse_add_direntry(nil, nil, 0, name, nil, 0) == DirectoryEntrySize.of(name, plus: false))
        #expect(fuse_add_direntry_plus(nil, nil, 0, name, nil, 0) == DirectoryEntrySize.of(name, plus: true))
    }

    @Test func blobsCarryTheirDescriptorAsUserAttributes() throws {
        let fixture = OperationFixture()
        let digest = try fixture.push(Array("one".utf8), to: "app")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        #expect(try fixture.fs.getxattr(ino: blob, name: "user.blobfs.digest", size: 0) == .size(digest.description.utf8.count))
        #expect(try fixture.fs.getxattr(ino: blob, name: "user.blobfs.digest", size: 4096) == .bytes(Array(digest.description.utf8)))
        #expect(errnoOf { try fixture.fs.getxattr(ino: blob, name: "user.blobfs.digest", size: 3) } == ERANGE)
        #expect(errnoOf { try fixture.fs.getxattr(ino: blob, name: "user.other", size: 100) } == ENODATA)
        #expect(errnoOf { try fixture.fs.getxattr(ino: blob, name: "security.selinux", size: 100) } == EOPNOTSUPP)
        let list = try fixture.fs.listxattr(ino: blob, size: 4096)
        #expect(list == .bytes(Array("user.blobfs.digest\0user.blobfs.size\0user.blobfs.mediatype\0".utf8)))
        // Directories have none, and listing them never fails.
        #expect(try fixture.fs.listxattr(ino: try fixture.inode("repo"), size: 0) == .size(0))
    }

    @Test func statfsShowsTheStoresCapacityOrAnEmptyFilesystem() throws {
        // The in-memory driver cannot tell: an empty filesystem of 4 KiB blocks.
        let memory = try OperationFixture().fs.statfs()
        #expect(memory.f_bsize == 4096 && memory.f_blocks == 0 && memory.f_namemax == 255)
        // A local store shows the filesystem it is on, as df would.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fs = BlobFileSystem(registry: Registry(driver: try FilesystemDriver(root: directory.path)), options: MountOptions(storageRoot: directory.path))
        var expected = statvfs()
        #expect(statvfs(directory.path, &expected) == 0)
        let shown = try fs.statfs()
        #expect(shown.f_blocks == expected.f_blocks && shown.f_bsize == expected.f_bsize && shown.f_files == expected.f_files)
    }

    private func names(_ fixture: OperationFixture, _ path: String) throws -> [String] {
        let opened = try fixture.fs.opendir(ino: try fixture.inode(path))
        defer { fixture.fs.releasedir(handle: opened.handle) }
        return try fixture.fs.readdir(handle: opened.handle, offset: 0, size: 1 << 16, plus: false).map(\.name)
    }
}

extension [String] {
    /// "." and "..", then digests in sorted order: how a blobs/ listing comes.
    func sortedDigestsLast() -> [String] {
        Array(prefix(2)) + dropFirst(2).sorted()
    }
}
