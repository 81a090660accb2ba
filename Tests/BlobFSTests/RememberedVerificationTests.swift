import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// `--remember-verified`: a later mount trusts what an earlier one hashed while the data file is
/// the same version, hashes again as soon as anything wrote to it, and `blobfs verify` takes what
/// it finds corrupt out of the ledger.
@Suite struct RememberedVerificationTests {
    /// The ledger line a mount writes for `digest` with the data file as it is now on disk.
    func ledgerLine(_ digest: Digest, dataFile: String) throws -> String {
        let st = try Posix.stat(dataFile).get()
        let modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        let changed = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        return "\(digest) \(st.st_dev) \(st.st_ino) \(st.st_size) \(modified) \(changed)"
    }

    /// Reads a whole file through the mount: its bytes, or the error that stopped the read.
    func readThrough(_ path: String) -> (bytes: [UInt8], error: Errno?) { Posix.readAll(path) }

    @Test func aLaterMountTrustsOnlyUnchangedDataAndVerifyRevokesCorruptBlobs() throws {
        let workspace = try Workspace("remember")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("remember/app", seededBytes(count: (1 << 20) + 17, seed: 900)),
            ("remember/app", seededBytes(count: 300_000, seed: 901)),
        ])
        let (rewritten, rotten) = (blobs[0], blobs[1])
        let ledger = workspace.path("verified.ledger")
        let options = ["--remember-verified", ledger]

        // A first mount hashes both blobs on their first reads and records them.
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: options) { mount in
            for blob in blobs {
                let read = readThrough(mount.path(blob.relativePath))
                #expect(read.error == nil && read.bytes == blob.bytes, "first read of \(blob): \(String(describing: read.error))")
            }
        }
        let recorded = try String(contentsOfFile: ledger, encoding: .utf8)
        for blob in blobs {
            let line = try ledgerLine(blob.canonical, dataFile: dataPath(root: root, blob.canonical))
            #expect(recorded.contains(line + "\n"), "the ledger records \(blob) as it is on disk:\n\(recorded)")
        }
        let mode = try Posix.stat(ledger).get().st_mode & 0o777
        #expect(mode == 0o600, "the ledger is created private: \(String(mode, radix: 8))")

        // Something rewrites one byte of a data file and puts its modification time back: the
        // change time still moved, so the next mount hashes the blob again and refuses it.
        let rewrittenData = dataPath(root: root, rewritten.canonical)
        let before = try Posix.stat(rewrittenData).get()
        try Posix.flipByte(in: rewrittenData, at: 4097)
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, rewrittenData, &times, 0) == 0)
        #expect(try Posix.stat(rewrittenData).get().st_mtim.tv_nsec == before.st_mtim.tv_nsec)

        // Bit rot changes nothing a stat shows. Stand in for it: corrupt the other blob and record
        // its new version, as if the ledger had been written after the rot.
        let rottenData = dataPath(root: root, rotten.canonical)
        try Posix.flipByte(in: rottenData, at: 1000)
        let rotLine = try ledgerLine(rotten.canonical, dataFile: rottenData) + "\n"
        let handle = try #require(FileHandle(forWritingAtPath: ledger))
        handle.seekToEndOfFile()
        handle.write(Data(rotLine.utf8))
        handle.closeFile()

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: options) { mount in
            let read = readThrough(mount.path(rewritten.relativePath))
            #expect(read.error == .EIO, "a data file written since it was verified is hashed again: \(String(describing: read.error))")
            #expect(read.bytes.isEmpty, "no byte of it is served")
            // What the ledger vouches for is not hashed: the trade this option makes, and why
            // `blobfs verify` must run now and then.
            let trusted = readThrough(mount.path(rotten.relativePath))
            #expect(trusted.error == nil && trusted.bytes.count == rotten.bytes.count && trusted.bytes != rotten.bytes,
                "a vouched-for blob is served without a hash")
        }

        // verify hashes everything, fails, and takes the corrupt blobs out of the ledger.
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", root, "--remember-verified", ledger], timeout: 120)
        #expect(verify.status == 1, "verify of the damaged store: \(verify)")
        #expect(verify.stdoutText.contains("taken out of the verification ledger"), "verify says what it revoked: \(verify)")
        #expect(try String(contentsOfFile: ledger, encoding: .utf8).contains("forget \(rotten.canonical)\n"))

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: options) { mount in
            let read = readThrough(mount.path(rotten.relativePath))
            #expect(read.error == .EIO, "after verify the rotten blob is hashed again and refused: \(String(describing: read.error))")
        }
    }

    @Test(arguments: [["--repository", "primed/one"], []])
    func verifyRecordsWhatHashedRight(scope: [String]) throws {
        let workspace = try Workspace("remember-verify")
        defer { workspace.remove() }
        let root = workspace.root
        let blobs = try writeStore(root: root, [
            ("primed/one", seededBytes(count: 70_000, seed: 920)),
            ("primed/two", seededBytes(count: 80_000, seed: 921)),
        ])
        let ledger = workspace.path("verified.ledger")
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", root, "--remember-verified", ledger] + scope, timeout: 120)
        #expect(verify.status == 0, "verify of an intact store: \(verify)")
        let recorded = try String(contentsOfFile: ledger, encoding: .utf8)
        let checked = scope.isEmpty ? blobs : [blobs[0]]
        for blob in blobs {
            let line = try ledgerLine(blob.canonical, dataFile: dataPath(root: root, blob.canonical)) + "\n"
            #expect(recorded.contains(line) == checked.contains { $0.canonical == blob.canonical },
                "\(blob) in the ledger after verify \(scope):\n\(recorded)")
        }
    }

    @Test func aLedgerOthersCanWriteOrALinkIsRefused() throws {
        let workspace = try Workspace("remember-unsafe")
        defer { workspace.remove() }
        _ = try writeStore(root: workspace.root, [("unsafe/app", seededBytes(count: 1000, seed: 910))])
        let blobfs = try BlobfsExecutable.path()

        let shared = workspace.path("shared.ledger")
        try Posix.writeFile(shared, [])
        #expect(chmod(shared, 0o666) == 0)
        let open = try Command.run(blobfs, ["mount", workspace.root, workspace.mountpoint, "--remember-verified", shared], timeout: 30)
        #expect(open.status == 1 && open.stderrText.contains("others can write it"), "a world-writable ledger: \(open)")

        let link = workspace.path("link.ledger")
        #expect(symlink(shared, link) == 0)
        let linked = try Command.run(blobfs, ["mount", workspace.root, workspace.mountpoint, "-o", "remember_verified=\(link)"], timeout: 30)
        #expect(linked.status == 1 && linked.stderrText.contains("symbolic link"), "a ledger behind a symbolic link: \(linked)")

        let verify = try Command.run(blobfs, ["verify", workspace.root, "--remember-verified", shared], timeout: 30)
        #expect(verify.status == 1 && verify.stderrText.contains("others can write it"), "verify refuses it too: \(verify)")
        #expect(MountTable.entry(at: workspace.mountpoint) == nil, "nothing was mounted")
    }
}
