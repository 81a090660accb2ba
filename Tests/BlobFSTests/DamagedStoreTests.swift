import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A damaged store: tools fail with EIO instead of copying corruption, zeros or short files, and
/// `blobfs verify` finds every problem.
@Suite struct DamagedStoreTests {
    func verify(_ root: String, _ extra: [String] = []) throws -> CommandResult {
        try Command.run(try BlobfsExecutable.path(), ["verify", root] + extra, timeout: 120)
    }

    @Test func corruptedMissingAndShrunkDataFailWithEIOAndVerifyReportsThem() throws {
        let workspace = try Workspace("damaged")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("damaged/app", seededBytes(count: (2 << 20) + 3, seed: 300)),  // one byte flipped
            ("damaged/app", seededBytes(count: 3 << 20, seed: 301)),  // data deleted under a warm cache
            ("damaged/app", seededBytes(count: (3 << 20) + 1, seed: 302)),  // data shrunk under a warm cache
            ("damaged/app", seededBytes(count: 1 << 20, seed: 303)),  // intact
            ("intact/app", seededBytes(count: 500_000, seed: 304)),  // intact, another repository
        ])
        let (corrupted, deleted, shrunk) = (blobs[0], blobs[1], blobs[2])
        let intact = [blobs[3], blobs[4]]

        // An intact store verifies clean, whole or per repository.
        let clean = try verify(root)
        #expect(clean.status == 0, "verify of an intact store: \(clean)")
        let cleanRepository = try verify(root, ["--repository", "damaged/app"])
        #expect(cleanRepository.status == 0, "verify --repository of an intact store: \(cleanRepository)")

        // One flipped byte in the middle, before anything reads it.
        try Posix.flipByte(in: dataPath(root: root, corrupted.canonical), at: 1_000_003)
        let corruptedOnDisk = try Posix.readFile(dataPath(root: root, corrupted.canonical))
        let corruptedHash = Digester.digest(of: corruptedOnDisk)

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { mount in
            // Warm the kernel's and the daemon's caches for the two blobs about to lose their data.
            for blob in [deleted, shrunk] {
                let path = mount.path(blob.relativePath)
                #expect(Posix.stat(path).map { Int($0.st_size) } == .success(blob.bytes.count), "\(blob)")
                let fd = try Posix.open(path, O_RDONLY).get()
                #expect(Posix.pread(fd, count: 4096, at: 0) == .success(Array(blob.bytes[..<4096])))
                close(fd)
            }
            #expect(unlink(dataPath(root: root, deleted.canonical)) == 0)
            #expect(truncate(dataPath(root: root, shrunk.canonical), off_t(shrunk.bytes.count / 2)) == 0)

            // cp fails with EIO on each, and read(2) reports EIO, after right bytes only, never all of them.
            for (blob, what) in [(corrupted, "corrupted"), (deleted, "deleted"), (shrunk, "shrunk")] {
                let path = mount.path(blob.relativePath)
                let target = workspace.path("copy-\(what)")
                let cp = try Command.run("cp", [path, target])
                #expect(cp.status != 0 && cp.stderrText.contains("Input/output error"), "cp of the \(what) blob: \(cp)\n\(mount.log.tail(2000))")
                if let copied = try? Posix.readFile(target) {
                    #expect(copied.count < blob.bytes.count, "cp of the \(what) blob left a full-size file")
                }
                let (bytes, error) = Posix.readAll(path)
                #expect(error == .EIO, "read(2) of the \(what) blob: \(error.map(\.description) ?? "no error") after \(bytes.count) bytes")
                #expect(bytes.count < blob.bytes.count, "read(2) of the \(what) blob returned all \(bytes.count) bytes")
                if blob.canonical != corrupted.canonical {
                    // Missing or shrunk data: what did come back is the blob's own prefix, no zeros.
                    expectSameBytes(bytes, Array(blob.bytes[..<min(bytes.count, blob.bytes.count)]), "\(what) prefix")
                }
                let sum = try Command.run("sha256sum", [path])
                #expect(sum.status != 0, "sha256sum of the \(what) blob must fail: \(sum)")
            }
            // The daemon says which blob, and both hashes.
            let log = mount.log
            #expect(log.contains(corrupted.canonical.hex) && log.contains(corruptedHash.hex), "the log names the corrupt blob and both hashes:\n\(log.tail(3000))")

            // Intact blobs still copy.
            for blob in intact {
                let target = workspace.path("copy-intact-\(blob.canonical.hex.prefix(8))")
                let cp = try Command.run("cp", [mount.path(blob.relativePath), target])
                #expect(cp.status == 0, "\(cp)")
                #expect(try sha256Hex(ofFile: target) == blob.canonical.hex)
            }
        }

        // verify finds all three, names them, and exits non-zero (whole store and per repository);
        // the intact repository alone is fine.
        let report = try verify(root)
        #expect(report.status == 1, "verify of a damaged store: \(report)")
        let text = report.stdoutText + report.stderrText
        for (blob, what) in [(corrupted, "corrupted"), (deleted, "missing"), (shrunk, "shrunk")] {
            #expect(text.contains(blob.canonical.hex), "verify reports the \(what) blob \(blob.canonical): \(report)")
        }
        let damagedRepository = try verify(root, ["--repository", "damaged/app"])
        #expect(damagedRepository.status == 1, "verify --repository damaged/app: \(damagedRepository)")
        let intactRepository = try verify(root, ["--repository", "intact/app"])
        #expect(intactRepository.status == 0, "verify --repository intact/app: \(intactRepository)")

        // --no-verify turns verification off: the flipped byte is copied as it is on disk.
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: ["--no-verify"]) { mount in
            let target = workspace.path("copy-unverified")
            let cp = try Command.run("cp", [mount.path(corrupted.relativePath), target])
            #expect(cp.status == 0, "\(cp)")
            #expect(try sha256Hex(ofFile: target) == corruptedHash.hex, "--no-verify copies the bytes on disk")
        }
    }

    /// verify opens with O_NOATIME, which fails with EPERM for a user who does not own the files
    /// (and lacks CAP_FOWNER): such a user, here nobody on root's store, must still read and
    /// check every blob, and still find the corrupt one.
    @Test func verifyByAUserWhoDoesNotOwnTheStore() throws {
        let workspace = try Workspace("other-user")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, (0..<40).map { ("other/app", seededBytes(count: 100 + $0 * 37, seed: 400 + UInt64($0))) })
        try Posix.flipByte(in: dataPath(root: root, blobs[17].canonical), at: 3)
        let chmod = try Command.run("chmod", ["-R", "go+rX", workspace.path("")])
        #expect(chmod.status == 0, "\(chmod)")
        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", try BlobfsExecutable.path(), "verify", root]
        for extra in [[], ["--repository", "other/app"]] {
            let report = try Command.run("setpriv", asNobody + extra, timeout: 120)
            #expect(report.status == 1, "verify as nobody: \(report)")
            let lines = report.stdoutText.split(separator: "\n")
            #expect(lines.count == 2 && lines[0].hasPrefix("corrupt data: ") && lines[0].contains(blobs[17].canonical.hex), "\(report)")
            #expect(report.stdoutText.contains("40 blobs") && report.stdoutText.contains("40 links"), "every blob read: \(report)")
        }
    }

    @Test func corruptionFoundByOneReaderIsRefusedToTheNext() throws {
        let workspace = try Workspace("refused")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("one/repo", seededBytes(count: 1 << 20, seed: 310))])[0]
        try Posix.flipByte(in: dataPath(root: workspace.root, blob.canonical), at: 0)
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let path = mount.path(blob.relativePath)
            #expect(Posix.readAll(path).error == .EIO, "first whole read")
            // The pages read before the mismatch must not be served from the page cache afterwards.
            for attempt in 1...2 {
                let cat = try Command.run("cat", [path])
                #expect(cat.status != 0 && cat.stderrText.contains("Input/output error"), "cat #\(attempt) after the mismatch: \(cat.status) \(cat.stderrText)")
                #expect(cat.stdout.count < blob.bytes.count, "cat #\(attempt) returned the whole corrupt blob")
            }
        }
    }

    @Test func emptyGarbageAndSymlinkedStoreFilesNeverLeakAndVerifyReportsTheGarbageLink() throws {
        let workspace = try Workspace("links")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("links/app", seededBytes(count: 20_000, seed: 320)),  // empty link (a registry write in progress)
            ("links/app", seededBytes(count: 20_001, seed: 321)),  // garbage in the link
            ("links/app", seededBytes(count: 20_002, seed: 322)),  // data replaced by a symlink out of the store
            ("links/app", seededBytes(count: 20_003, seed: 323)),  // intact
        ])
        let (emptyLink, garbageLink, symlinked, intact) = (blobs[0], blobs[1], blobs[2], blobs[3])
        func linkPath(_ blob: StoredBlob) -> String {
            "\(root)/docker/registry/v2/repositories/\(blob.repository)/_layers/sha256/\(blob.canonical.hex)/link"
        }
        try Posix.writeFile(linkPath(emptyLink), [])
        try Posix.writeFile(linkPath(garbageLink), Array("this is not a digest".utf8))
        let outside = workspace.path("outside-secret")
        try Posix.writeFile(outside, seededBytes(count: 20_002, seed: 999))
        let data = dataPath(root: root, symlinked.canonical)
        #expect(unlink(data) == 0 && symlink(outside, data) == 0)

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { mount in
            let directory = mount.path("repo/links/app/blobs")
            #expect(Posix.stat(mount.path(emptyLink.relativePath)).errno == .ENOENT, "an empty link reads as absent")
            #expect(Posix.stat(mount.path(garbageLink.relativePath)).errno == .EIO, "garbage in a link is EIO")
            let opened = Posix.open(mount.path(symlinked.relativePath), O_RDONLY)
            if case .success(let fd) = opened {
                let (bytes, _) = Posix.readToEnd(fd)
                close(fd)
                #expect(bytes.isEmpty, "a symlinked data file was followed: \(bytes.count) bytes read")
            }
            #expect(opened.errno == .EIO, "a symlinked data file reads as an I/O error, got \(opened.errno.map(\.description) ?? "success")")
            // One bad entry does not break the listing of the others.
            let ls = try Command.run("ls", ["-l", directory])
            #expect(ls.status == 0 && ls.stdoutText.contains(intact.digest.description), "\(ls)")
            #expect(!ls.stdoutText.contains(emptyLink.canonical.hex), "an empty link is not listed: \(ls)")
            let cp = try Command.run("cp", [mount.path(intact.relativePath), workspace.path("intact")])
            #expect(cp.status == 0, "\(cp)")
            #expect(try sha256Hex(ofFile: workspace.path("intact")) == intact.canonical.hex)
        }

        let report = try Command.run(try BlobfsExecutable.path(), ["verify", root], timeout: 120)
        #expect(report.status == 1, "verify with a garbage link: \(report)")
        #expect((report.stdoutText + report.stderrText).contains(garbageLink.canonical.hex), "verify names the garbage link: \(report)")
    }

    @Test func corruptBlobsFailRsyncAndACopyAfterAPartialRead() throws {
        let workspace = try Workspace("rot")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("rot/rsync", seededBytes(count: (3 << 20) + 11, seed: 330)),  // corrupt
            ("rot/rsync", seededBytes(count: 200_000, seed: 331)),
            ("rot/partial", seededBytes(count: 24 << 20, seed: 334)),  // corrupt at 20 MiB, first 12 MiB read before
            ("rot/tail", seededBytes(count: 24 << 20, seed: 335)),  // corrupt at 1 MiB, last bytes read before
        ])
        let (forRsync, partial, tail) = (blobs[0], blobs[2], blobs[3])
        try Posix.flipByte(in: dataPath(root: root, forRsync.canonical), at: 2_000_000)
        try Posix.flipByte(in: dataPath(root: root, partial.canonical), at: 20 << 20)
        try Posix.flipByte(in: dataPath(root: root, tail.canonical), at: 1 << 20)

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { mount in
            // rsync fails and does not leave the corrupt blob in the copy; the good one arrives.
            let copy = try workspace.makeDirectory("rsync")
            let rsync = try Command.run("rsync", ["-a", mount.path("repo/rot/rsync/"), copy + "/"], timeout: 120)
            #expect(rsync.status != 0, "rsync of a repository with a corrupt blob must fail: \(rsync)")
            let copied = copy + "/blobs/\(forRsync.digest)"
            if let bytes = try? Posix.readFile(copied) {
                Issue.record("rsync left the corrupt blob in the copy (\(bytes.count) bytes, sha256 \(Digester.digest(of: bytes)))")
            }
            #expect(try sha256Hex(ofFile: copy + "/blobs/\(blobs[1].digest)") == blobs[1].canonical.hex)

            // Part of a blob read earlier (pages in the kernel's cache, kept across opens): a later
            // whole copy must still be verified and fail. The partial read itself may fail with EIO
            // (a blob checked whole on its first read) or return the right bytes: nothing else.
            let path = mount.path(partial.relativePath)
            if case .success(let fd) = Posix.open(path, O_RDONLY) {
                for offset in stride(from: 0, to: 12 << 20, by: 1 << 20) {
                    let read = Posix.pread(fd, count: 1 << 20, at: Int64(offset))
                    #expect(read == .failure(.EIO) || read == .success(Array(partial.bytes[offset..<(offset + (1 << 20))])), "partial read at \(offset): \(read.errno.map(\.description) ?? "wrong bytes")")
                }
                close(fd)
            }
            let target = workspace.path("copy-partial")
            let cp = try Command.run("cp", [path, target])
            #expect(cp.status != 0 && cp.stderrText.contains("Input/output error"), "cp of a corrupt blob whose first 12 MiB were read before: \(cp)\n\(mount.log.tail(1500))")
            if cp.status == 0 {
                Issue.record("the copy has sha256 \(try sha256Hex(ofFile: target)), the blob's digest is \(partial.canonical.hex): corruption copied")
            }

            // The same when only the last bytes were read before (`tail`, a gzip trailer): those
            // pages stay cached, so the copy's own reads never reach the end of the blob.
            let tailPath = mount.path(tail.relativePath)
            if case .success(let tailFD) = Posix.open(tailPath, O_RDONLY) {
                let read = Posix.pread(tailFD, count: 10, at: Int64(tail.bytes.count - 10))
                #expect(read == .failure(.EIO) || read == .success(Array(tail.bytes.suffix(10))), "tail read: \(read.errno.map(\.description) ?? "wrong bytes")")
                close(tailFD)
            }
            let tailTarget = workspace.path("copy-tail")
            let tailCopy = try Command.run("cp", [tailPath, tailTarget])
            #expect(tailCopy.status != 0 && tailCopy.stderrText.contains("Input/output error"), "cp of a corrupt blob whose last bytes were read before: \(tailCopy)")
            if tailCopy.status == 0 {
                Issue.record("the copy has sha256 \(try sha256Hex(ofFile: tailTarget)), the blob's digest is \(tail.canonical.hex): corruption copied")
            }
        }
    }

    /// tar takes a short read for a file that shrank and pads it with zeros (a warning, exit 1),
    /// so a corrupt blob must end in a read error, never in a read that comes up short first.
    /// Timing decides which pages are cached when the mismatch is found, so a few fresh mounts
    /// are tried; every one must give tar a read error.
    @Test func tarOfACorruptBlobReportsTheReadErrorAndNeverPadsWithZeros() throws {
        let workspace = try Workspace("tar")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("rot/tar", seededBytes(count: (3 << 20) + 13, seed: 332)),  // corrupt
            ("rot/tar", seededBytes(count: 200_001, seed: 333)),
        ])
        try Posix.flipByte(in: dataPath(root: root, blobs[0].canonical), at: 3_000_000)
        for attempt in 1...6 {
            let tar = try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { mount in
                try Command.run("tar", ["-c", "-f", workspace.path("rot.tar"), "-C", mount.path("repo/rot"), "tar"], timeout: 120)
            }
            #expect(tar.status == 2 && tar.stderrText.contains("Input/output error") && !tar.stderrText.contains("padding with zeros"),
                "attempt \(attempt): tar of a repository with a corrupt blob must fail with the read error: \(tar)")
            if tar.stderrText.contains("padding with zeros") { break }
        }
    }
}
