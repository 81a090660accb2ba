import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A file under a digest name has exactly that digest's bytes or fails with EIO, whatever the
/// store does under the mount: data files edited or replaced after their first verification,
/// links that hold another blob than their name, aliases whose bytes do not hash to the alias,
/// and blobs removed from a repository while the kernel still holds their name (docs/hostile-input.md, F2,
/// F3, F5).
@Suite struct BytesMatchTheirNameTests {
    /// Drops the kernel's cached pages of a file in the mount, so the next read reaches the daemon.
    func dropPageCache(_ path: String) throws {
        let fd = try Posix.open(path, O_RDONLY).get()
        defer { close(fd) }
        #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
    }

    func linkPath(root: String, _ repository: String, _ digest: Digest) -> String {
        "\(root)/docker/registry/v2/repositories/\(repository)/_layers/\(digest.algorithm.rawValue)/\(digest.hex)/link"
    }

    /// What `sha256sum` makes of a file: its hash, or nil when it failed.
    func sha256sum(_ path: String) throws -> String? {
        let result = try Command.run("sha256sum", [path])
        guard result.status == 0 else { return nil }
        return String(result.stdoutText.prefix(64))
    }

    @Test func aDataFileEditedOrReplacedAfterVerificationFailsWithEIO() throws {
        let workspace = try Workspace("edited")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("edit/app", seededBytes(count: 1 << 20, seed: 900)),  // edited in place
            ("edit/app", seededBytes(count: 1 << 20, seed: 901)),  // replaced by another file (mv)
            ("edit/app", seededBytes(count: 3 << 20, seed: 902)),  // edited while a reader has it open
            ("edit/app", seededBytes(count: 300_000, seed: 903)),  // rewritten with the same bytes
        ])
        let (edited, replaced, editedWhileOpen, rewritten) = (blobs[0], blobs[1], blobs[2], blobs[3])
        // Daemon-served reads: a passthrough handle is read by the kernel straight from the data
        // file, so an edit under an open handle (c) reaches its reader (docs/architecture.md,
        // "Passthrough"); what passthrough opens do with edited files is in PassthroughMountTests.
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: ["--passthrough", "off"]) {
            (mount: BlobfsMount) throws -> Void in
            for blob in blobs {
                #expect(try sha256sum(mount.path(blob.relativePath)) == blob.canonical.hex, "first read of \(blob)")
            }
            // (a) An in-place edit after verification: the next open sees a new version.
            let data = dataPath(root: root, edited.canonical)
            let fd = try Posix.open(data, O_WRONLY).get()
            #expect(pwrite(fd, "CORRUPT", 7, 1000) == 7)
            close(fd)
            // (b) The data file replaced by a different file of the same size (a new inode).
            let other = workspace.path("other")
            try Posix.writeFile(other, seededBytes(count: replaced.bytes.count, seed: 999))
            #expect(rename(other, dataPath(root: root, replaced.canonical)) == 0)
            // (d) Rewritten with its own bytes (a new version, still right): served again.
            let again = workspace.path("again")
            try Posix.writeFile(again, rewritten.bytes)
            #expect(rename(again, dataPath(root: root, rewritten.canonical)) == 0)

            for blob in [edited, replaced, rewritten] { try dropPageCache(mount.path(blob.relativePath)) }
            #expect(try sha256sum(mount.path(edited.relativePath)) == nil, "an edited blob must fail\n\(mount.log.tail(2000))")
            #expect(Posix.readAll(mount.path(edited.relativePath)).error == .EIO)
            #expect(try sha256sum(mount.path(replaced.relativePath)) == nil, "a replaced blob must fail")
            let cp = try Command.run("cp", [mount.path(replaced.relativePath), workspace.path("copy")])
            #expect(cp.status != 0 && cp.stderrText.contains("Input/output error"), "\(cp)")
            #expect(try sha256sum(mount.path(rewritten.relativePath)) == rewritten.canonical.hex, "same bytes, new version")

            // (c) A reader with the file open: verified, then the data file is edited under it.
            let path = mount.path(editedWhileOpen.relativePath)
            let reader = try Posix.open(path, O_RDONLY).get()
            defer { close(reader) }
            #expect(Posix.pread(reader, count: 4096, at: 0) == .success(Array(editedWhileOpen.bytes[..<4096])))
            let writer = try Posix.open(dataPath(root: root, editedWhileOpen.canonical), O_WRONLY).get()
            #expect(pwrite(writer, "CORRUPT", 7, 2 << 20) == 7)
            close(writer)
            #expect(posix_fadvise(reader, 0, 0, POSIX_FADV_DONTNEED) == 0)
            let late = Posix.pread(reader, count: 4096, at: 2 << 20)
            #expect(late.failure == .EIO, "a read after the data file changed under an open handle: \(late.map(\.count))")

            let log = mount.log
            #expect(log.contains(edited.canonical.hex) && log.contains("does not match"), "the log names the edited blob:\n\(log.tail(3000))")
        }
    }

    @Test func aLinkHoldingAnotherBlobOrAnAliasOfOtherBytesFailsWithEIO() throws {
        let workspace = try Workspace("wronglink")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("links/app", seededBytes(count: 200_000, seed: 910)),
            ("links/app", seededBytes(count: 100_000, seed: 911)),
        ])
        let (target, named) = (blobs[0], blobs[1])
        // (a) The link of `named` holds `target`'s digest: a file named X must not serve Y.
        let link = linkPath(root: root, "links/app", named.digest)
        try Posix.writeFile(link, Array(target.canonical.description.utf8))
        // (b) A sha512 alias whose link holds `target`, though its name is the sha512 of other
        // bytes; and an honest alias (the sha512 of `target`'s bytes) next to it.
        let lying = Digester.digest(of: Array("x".utf8), algorithm: .sha512)
        let honest = Digester.digest(of: target.bytes, algorithm: .sha512)
        for alias in [lying, honest] {
            let path = linkPath(root: root, "links/app", alias)
            #expect(try Command.run("mkdir", ["-p", (path as NSString).deletingLastPathComponent]).status == 0)
            try Posix.writeFile(path, Array(target.canonical.description.utf8))
        }
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { (mount: BlobfsMount) throws -> Void in
            let blobsDirectory = mount.path("repo/links/app/blobs")
            #expect(Posix.stat("\(blobsDirectory)/\(named.digest)").failure == .EIO, "a link to another blob")
            #expect(try sha256sum("\(blobsDirectory)/\(named.digest)") == nil)
            let listing = try FileManager.default.contentsOfDirectory(atPath: blobsDirectory)
            #expect(!listing.contains(named.digest.description), "a wrong link is not listed: \(listing)")

            let lyingPath = "\(blobsDirectory)/\(lying)"
            let (bytes, error) = Posix.readAll(lyingPath)
            #expect(error == .EIO && bytes.isEmpty, "an alias whose bytes do not hash to it: \(bytes.count) bytes, \(String(describing: error))")
            let sha512 = try Command.run("sha512sum", ["\(blobsDirectory)/\(honest)"])
            #expect(sha512.status == 0 && sha512.stdoutText.hasPrefix(honest.hex), "an honest alias reads: \(sha512)")
            #expect(try sha256sum("\(blobsDirectory)/\(target.digest)") == target.canonical.hex)
            let log = mount.log
            #expect(log.contains(lying.hex), "the log names the lying alias:\n\(log.tail(3000))")
        }
    }

    @Test func aBlobRemovedFromARepositoryStopsBeingReadableThere() throws {
        let workspace = try Workspace("removed")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("removed/app", seededBytes(count: 5000, seed: 920)),
            ("removed/app", seededBytes(count: 6000, seed: 921)),
            ("kept/app", seededBytes(count: 5000, seed: 920)),  // the same blob in another repository
        ])
        let (removed, stays, elsewhere) = (blobs[0], blobs[1], blobs[2])
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { (mount: BlobfsMount) throws -> Void in
            for blob in blobs { #expect(try sha256sum(mount.path(blob.relativePath)) == blob.canonical.hex) }
            // What a registry delete does: the repository's link directory goes.
            let linkDirectory = (linkPath(root: root, "removed/app", removed.digest) as NSString).deletingLastPathComponent
            #expect(try Command.run("rm", ["-r", linkDirectory]).status == 0)
            // At once, though the kernel holds the name for the blob entry timeout.
            let (bytes, error) = Posix.readAll(mount.path(removed.relativePath))
            #expect(bytes.isEmpty && error == .ENOENT, "read after removal (the open answers ESTALE, the kernel looks the name up again): \(bytes.count) bytes, \(String(describing: error))")
            #expect(Posix.stat(mount.path(removed.relativePath)).failure == .ENOENT, "stat after the failed open")
            #expect(try sha256sum(mount.path(stays.relativePath)) == stays.canonical.hex)
            #expect(try sha256sum(mount.path(elsewhere.relativePath)) == elsewhere.canonical.hex, "still linked in another repository")
        }
    }
}

extension BytesMatchTheirNameTests {
    /// A data file that is a FIFO or a directory is a damaged store: EIO with a log line saying
    /// so, never a hang and never a silent absence (F13, case 9 of the hostile-input run). So is
    /// a link directory or link file that is a symbolic link: refused on lookup, and left out of
    /// listings with a log line rather than in silence (F15).
    @Test func aDataFileThatIsNotARegularFileIsReportedNotHidden() throws {
        let workspace = try Workspace("notregular")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("odd/app", seededBytes(count: 4000, seed: 940)),
            ("odd/app", seededBytes(count: 4001, seed: 941)),
            ("odd/app", seededBytes(count: 4002, seed: 942)),
            ("odd/app", seededBytes(count: 4003, seed: 943)),
            ("odd/app", seededBytes(count: 4004, seed: 944)),
        ])
        let (fifo, directory, fine, symlinkedDirectory, symlinkedLink) = (blobs[0], blobs[1], blobs[2], blobs[3], blobs[4])
        // The <hex> directory of one link, and the link file of another, moved aside and
        // replaced by symbolic links to them (what a hostile store plants).
        for (blob, isDirectory) in [(symlinkedDirectory, true), (symlinkedLink, false)] {
            let link = linkPath(root: root, "odd/app", blob.digest)
            let planted = isDirectory ? (link as NSString).deletingLastPathComponent : link
            let aside = workspace.path("aside-\(blob.digest.hex.prefix(8))")
            #expect(rename(planted, aside) == 0 && symlink(aside, planted) == 0)
        }
        #expect(unlink(dataPath(root: root, fifo.canonical)) == 0 && mkfifo(dataPath(root: root, fifo.canonical), 0o644) == 0)
        #expect(unlink(dataPath(root: root, directory.canonical)) == 0 && mkdir(dataPath(root: root, directory.canonical), 0o755) == 0)
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { (mount: BlobfsMount) throws -> Void in
            for blob in [fifo, directory, symlinkedDirectory, symlinkedLink] {
                #expect(Posix.stat(mount.path(blob.relativePath)).failure == .EIO, "\(blob)")
            }
            let listing = try FileManager.default.contentsOfDirectory(atPath: mount.path("repo/odd/app/blobs"))
            #expect(listing == [fine.digest.description], "only the readable blob is listed: \(listing)")
            #expect(try sha256sum(mount.path(fine.relativePath)) == fine.canonical.hex)
            let log = mount.log
            for blob in [fifo, directory] {
                #expect(log.contains("\(blob.canonical.hex)/data is not a regular file"), "\(blob) in the log:\n\(log.tail(3000))")
            }
            for blob in [symlinkedDirectory, symlinkedLink] {
                #expect(log.contains("skipping a blob that cannot be read") && log.contains("digest=\(blob.digest)"), "\(blob) in the log:\n\(log.tail(3000))")
            }
        }
    }
}

extension Result {
    /// The error, for expectations on failures.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
