@testable import BlobFS
import Distribution
import Glibc
import Storage
import StorageDriver
import Testing

/// open, read and release of blobs: verified bytes only, membership checked at open.
@Suite struct ReadTests {
    @Test func aBlobReadsAsItsBytes() throws {
        let fixture = OperationFixture(readWrite: false)
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let digest = try fixture.push(bytes, to: "app")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        #expect(try fixture.contents(of: blob, size: bytes.count + 10) == bytes)
        let opened = try fixture.fs.open(ino: blob, flags: O_RDONLY)
        #expect(opened.keepCache && !opened.directIO)
        var tail = [UInt8](repeating: 0, count: 10)
        let n = try tail.withUnsafeMutableBytes { try fixture.fs.read(handle: opened.handle, offset: Int64(bytes.count - 4), into: $0) }
        #expect(Array(tail[..<n]) == Array(bytes.suffix(4)))
        fixture.fs.release(handle: opened.handle)
        #expect(fixture.fs.handles.count == 0)
    }

    @Test func bytesThatDoNotHashToTheNameAreRefused() throws {
        let fixture = OperationFixture(readWrite: false)
        let bytes = Array("the real bytes".utf8)
        let digest = try fixture.push(bytes, to: "app")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        // Same size, other bytes: what a bit flip or an edit in place leaves.
        try fixture.driver.putContent(PathMapper.path(.blobData(digest)), Array("the fake bytes".utf8))
        let opened = try fixture.fs.open(ino: blob, flags: O_RDONLY)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(errnoOf { try buffer.withUnsafeMutableBytes { try fixture.fs.read(handle: opened.handle, offset: 0, into: $0) } } == EIO)
        #expect(fixture.notices.droppedPages == [blob])
        fixture.fs.release(handle: opened.handle)
        // Known corrupt in this version: the next open fails at once.
        #expect(errnoOf { try fixture.fs.open(ino: blob, flags: O_RDONLY) } == EIO)
    }

    @Test func aNameNoLongerLinkedIsStaleAtOpen() throws {
        let fixture = OperationFixture(readWrite: false)
        let digest = try fixture.push(Array("linked".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let blob = try fixture.inode("repo/app/blobs/\(digest)")
        try fixture.driver.delete(PathMapper.path(.layerLink(try RepositoryName("app"), digest)))
        #expect(errnoOf { try fixture.fs.open(ino: blob, flags: O_RDONLY) } == ESTALE)
        #expect(fixture.notices.forgottenEntries == ["\(blobs)/\(digest)"])
        #expect(fixture.fs.handles.count == 0)
    }

    @Test func onlyBlobsOpenForReading() throws {
        let fixture = OperationFixture(readWrite: false)
        try fixture.push(Array("a".utf8), to: "app")
        #expect(errnoOf { try fixture.fs.open(ino: try fixture.inode("repo/app"), flags: O_RDONLY) } == EISDIR)
        #expect(errnoOf { try fixture.fs.open(ino: 424_242, flags: O_RDONLY) } == ENOENT)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(errnoOf { try buffer.withUnsafeMutableBytes { try fixture.fs.read(handle: 77, offset: 0, into: $0) } } == EBADF)
    }

    @Test func anUploadInProgressCannotBeRead() throws {
        let fixture = OperationFixture()
        try fixture.push(Array("a".utf8), to: "app")
        let blobs = try fixture.inode("repo/app/blobs")
        let digest = Digester.digest(of: Array("new".utf8))
        let created = try fixture.fs.create(parent: blobs, name: ".\(digest).Ab12Cd")
        defer { fixture.fs.release(handle: created.open.handle) }
        #expect(errnoOf { try fixture.fs.open(ino: created.entry.ino, flags: O_RDONLY) } == EACCES)
    }
}
