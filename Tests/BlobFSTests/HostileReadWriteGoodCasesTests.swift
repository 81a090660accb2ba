import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// Regression tests for the read-write "cases that behaved well" of the hostile-input run
/// (docs/hostile-input.md, cases 20–32): writes in the wrong place or
/// under the wrong name, renames, links and rewrites of blobs, concurrent and abandoned writers,
/// purge-uploads against hostile and active uploads, inode exhaustion, empty and sparse blobs,
/// and a read-write mount over a store that symlinks out of itself.
@Suite struct HostileReadWriteGoodCasesTests {
    static func blob(_ repository: String, _ bytes: [UInt8], _ algorithm: DigestAlgorithm = .sha256) -> StoredBlob {
        StoredBlob(repository: repository, bytes: bytes, digest: Digester.digest(of: bytes, algorithm: algorithm))
    }

    static func expectNoUploads(_ root: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        _ = MountTable.waitUntil(timeout: 5) { uploadEntries(root: root).isEmpty }
        #expect(uploadEntries(root: root).isEmpty, "\(what): uploads left: \(uploadEntries(root: root))", sourceLocation: sourceLocation)
    }

    static func expectVerifies(_ root: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let verify = try runBlobfs(["verify", root])
        #expect(verify.status == 0, "blobfs verify: \(verify)", sourceLocation: sourceLocation)
    }

    static func create(_ path: String) -> SyscallOutcome {
        syscallOutcome(closingDescriptor: true) { Int(Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)) }
    }

    // MARK: - Cases 20, 21: where and under which names a write may go

    @Test func writesOutsideBlobsInvalidNamesAndWrongContentAreRefusedAndLeaveNothing() throws {
        let workspace = try Workspace("rw-hostile-names")
        defer { workspace.remove() }
        let root = workspace.root
        let existing = try writeStore(root: root, [("team/app", seededBytes(count: 300_000, seed: 12_000))])[0]
        let before = try Command.run("find", [registryV2(root), "-printf", "%P %s\\n"]).stdoutText

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            // Case 20: files outside a blobs/ directory: EPERM, logged.
            for relative in ["f", "repo/f", "repo/team/f", "repo/team/app/f"] {
                #expect(Self.create(mount.path(relative)) == .failed(.EPERM), "create \(relative)")
            }
            #expect(logLines(mount.log, containing: "files can only be created in a repository's blobs or manifests directory").count >= 4, "\(mount.log.tail(2000))")
            // Invalid digest names: EINVAL.
            let hex = existing.canonical.hex
            let blobs = mount.path("repo/team/app/blobs")
            for name in ["sha256:\(hex).tmp", "SHA256:\(hex)", "sha256:\(hex.uppercased())", "md5:d41d8cd98f00b204e9800998ecf8427e"] {
                #expect(Self.create("\(blobs)/\(name)") == .failed(Errno(EINVAL)), "create \(name)")
            }
            // Wrong content: EIO at close for a new sha256 name, an existing one, and a sha512 name.
            let wrong = seededBytes(count: 100_000, seed: 12_001)
            let newName = Digester.digest(of: seededBytes(count: 100_000, seed: 12_002))
            let sha512Name = Digester.digest(of: seededBytes(count: 10, seed: 12_003), algorithm: .sha512)
            for (name, flags) in [(newName, O_WRONLY | O_CREAT | O_EXCL), (existing.digest, O_WRONLY | O_TRUNC), (sha512Name, O_WRONLY | O_CREAT | O_EXCL)] {
                let outcome = writeThroughSyscalls("\(blobs)/\(name)", wrong, flags: flags)
                #expect(outcome.open == nil && outcome.write == nil && outcome.close == .EIO, "wrong bytes under \(name): \(outcome)")
            }
            #expect(try listing(blobs) == [existing.digest.description])
            #expect(readAndCompare(mount.path(existing.relativePath), expected: existing.bytes, chunk: 1 << 20) == nil, "the existing blob is unchanged")

            // Case 21: mkdir of invalid names: EINVAL; at the mount's root: EPERM.
            let invalid = [
                "UPPER", "a..b", "a b", "a\nb", "ünicode", "-dash", "x:5000", "_layers", "_uploads", String(repeating: "a", count: 256),
            ]
            for name in invalid {
                let made = syscallOutcome { Int(Glibc.mkdir(mount.path("repo/team/\(name)"), 0o755)) }
                #expect(made == .failed(Errno(EINVAL)), "mkdir repo/team/\(name.debugDescription): \(made)")
            }
            let half = String(repeating: "b", count: 120)
            #expect(syscallOutcome { Int(Glibc.mkdir(mount.path("repo/\(half)"), 0o755)) } == .succeeded)
            #expect(syscallOutcome { Int(Glibc.mkdir(mount.path("repo/\(half)/\(half)"), 0o755)) } == .succeeded)
            let tooLong = syscallOutcome { Int(Glibc.mkdir(mount.path("repo/\(half)/\(half)/cccccccccccccccc"), 0o755)) }
            #expect(tooLong == .failed(Errno(EINVAL)), "mkdir of a name over 255 characters in all: \(tooLong)")
            #expect(syscallOutcome { Int(Glibc.mkdir(mount.path("newtop"), 0o755)) } == .failed(.EPERM), "mkdir at the mount's root")
            // Valid names, 10 levels deep: a repository that takes a blob.
            let deep = (0..<10).map { "l\($0)" }.joined(separator: "/")
            let mkdir = try Command.run("mkdir", ["-p", mount.path("repo/\(deep)/blobs")])
            #expect(mkdir.status == 0, "\(mkdir)")
            let deepBlob = Self.blob(deep, seededBytes(count: 5000, seed: 12_004))
            #expect(writeThroughSyscalls(mount.path(deepBlob.relativePath), deepBlob.bytes).succeeded)
            expectCommitted(root: root, deepBlob)
        }
        let after = try Command.run("find", [registryV2(root), "-printf", "%P %s\\n"]).stdoutText
        let added = Set(after.split(separator: "\n")).subtracting(before.split(separator: "\n"))
        #expect(added.allSatisfy { $0.hasPrefix("repositories/l0") || $0.hasPrefix("repositories/bbbb") || $0.hasPrefix("blobs/") }, "what reached the disk: \(added.sorted())")
        #expect(!added.contains { $0.contains("_uploads/") }, "an upload was left: \(added.sorted())")
        expectCommitted(root: root, existing)
    }

    // MARK: - Cases 22, 23, 31: blobs never change

    @Test func renamesLinksRmdirAndRewritesOfBlobsAreRefusedAndTheBlobsStayIntact() throws {
        let workspace = try Workspace("rw-hostile-fixed")
        defer { workspace.remove() }
        let root = workspace.root
        let stored = try writeStore(root: root, [
            ("team/app", seededBytes(count: 300_000, seed: 12_100)), ("team/other", seededBytes(count: 5000, seed: 12_101)),
        ])
        let (blob, other) = (stored[0], stored[1])
        let source = workspace.path("other-bytes")
        try Posix.writeFile(source, other.bytes)
        let dupBlob = Self.blob("team/app", seededBytes(count: 70_000, seed: 12_102))
        let renamedWhileOpen = Self.blob("team/other", seededBytes(count: 80_000, seed: 12_103))

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let path = mount.path(blob.relativePath)
            let appBlobs = mount.path("repo/team/app/blobs")
            let otherBlobs = mount.path("repo/team/other/blobs")
            // Case 22: renames of blobs and directories, hard links, rmdir: refused.
            let refusals: [(String, SyscallOutcome, [SyscallOutcome])] = [
                ("rename to another repository", syscallOutcome { Int(Glibc.rename(path, "\(otherBlobs)/\(blob.digest)")) }, [.failed(.EPERM)]),
                ("rename onto an existing digest", syscallOutcome { Int(Glibc.rename(path, mount.path(other.relativePath))) }, [.failed(.EPERM)]),
                ("rename a directory", syscallOutcome { Int(Glibc.rename(mount.path("repo/team/app"), mount.path("repo/team/app2"))) }, [.failed(.EPERM)]),
                ("hard link in the same directory", syscallOutcome { Int(Glibc.link(path, "\(appBlobs)/hard")) }, [.failed(.EPERM), .failed(Errno(EEXIST))]),
                // Since issue 12 a hard link into another repository under the blob's own name is a
                // cross-repository mount (how a backup's hard links are restored); the blob stays intact.
                ("hard link into another repository", syscallOutcome { Int(Glibc.link(path, "\(otherBlobs)/\(blob.digest)")) }, [.succeeded]),
                ("rmdir of blobs/", syscallOutcome { Int(Glibc.rmdir(otherBlobs)) }, [.failed(.EPERM)]),
            ]
            for (what, outcome, allowed) in refusals {
                #expect(allowed.contains(outcome), "\(what): \(outcome)")
            }
            var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
            #expect(syscallOutcome { Int(Glibc.chmod(path, 0o666)) } == .succeeded)
            #expect(syscallOutcome { Int(Glibc.chown(path, 4321, 4321)) } == .succeeded)
            #expect(syscallOutcome { Int(utimensat(AT_FDCWD, path, &times, 0)) } == .succeeded)
            let info = try Posix.stat(path).get()
            #expect(info.st_mode & 0o7777 == 0o444 && info.st_uid != 4321, "mode \(String(info.st_mode & 0o7777, radix: 8)) uid \(info.st_uid)")

            // Case 23: every way of changing a blob in place: EPERM.
            let tools: [(String, [String])] = [
                ("truncate", ["-s", "0", path]), ("truncate", ["-s", "5", path]),
                ("bash", ["-c", "echo x >> \"$1\"", "bash", path]),
                ("dd", ["if=/dev/zero", "of=\(path)", "bs=1", "count=1", "conv=notrunc", "status=none"]),
                ("fallocate", ["-l", "1000000", path]),
                ("rsync", ["--inplace", source, path]),
            ]
            for (tool, arguments) in tools {
                let result = try Command.run(tool, arguments)
                #expect(result.status != 0 && result.stderrText.contains("Operation not permitted"), "\(result)")
            }
            let empty = try Command.run("bash", ["-c", ": > \"$1\"", "bash", path])
            #expect(empty.status == 0, ": > blob: \(empty)")

            // Case 31: a temporary upload renamed onto an existing digest with other bytes: EIO.
            let temporary = "\(appBlobs)/.\((path as NSString).lastPathComponent).AbC123"  // rsync's temporary name
            #expect(writeThroughSyscalls(temporary, Array("wrong".utf8), flags: O_WRONLY | O_CREAT | O_EXCL).succeeded)
            #expect(syscallOutcome { Int(Glibc.rename(temporary, path)) } == .failed(.EIO), "a wrong temporary onto an existing blob")
            _ = unlink(temporary)

            // A temporary renamed while its writer still has it open: later writes EBADF.
            let openTemporary = "\(otherBlobs)/.\(renamedWhileOpen.digest).XyZ123"  // rsync's temporary name
            let fd = try Posix.open(openTemporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC).get()
            #expect(renamedWhileOpen.bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, renamedWhileOpen.bytes.count) } == renamedWhileOpen.bytes.count)
            #expect(syscallOutcome { Int(Glibc.rename(openTemporary, mount.path(renamedWhileOpen.relativePath))) } == .succeeded)
            #expect(syscallOutcome { Glibc.write(fd, "x", 1) } == .failed(Errno(EBADF)), "a write after the rename committed")
            close(fd)

            // Commit at the close of a duplicate (the bytes were complete): later writes EBADF, ftruncate EIO.
            let dupFD = try Posix.open(mount.path(dupBlob.relativePath), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC).get()
            #expect(dupBlob.bytes.withUnsafeBytes { Glibc.write(dupFD, $0.baseAddress, dupBlob.bytes.count) } == dupBlob.bytes.count)
            #expect(syscallOutcome { Int(Glibc.close(fcntl(dupFD, F_DUPFD_CLOEXEC, 0))) } == .succeeded)
            #expect(syscallOutcome { Glibc.write(dupFD, "x", 1) } == .failed(Errno(EBADF)), "a write after the commit")
            #expect(syscallOutcome { Int(ftruncate(dupFD, 10)) } == .failed(.EIO), "ftruncate after the commit")
            close(dupFD)

            for written in [blob, other, renamedWhileOpen, dupBlob] {
                #expect(readAndCompare(mount.path(written.relativePath), expected: written.bytes, chunk: 1 << 20) == nil, "\(written)")
            }
            #expect(try listing(appBlobs) == [blob.digest.description, dupBlob.digest.description])
        }
        for written in [blob, other, renamedWhileOpen, dupBlob] { expectCommitted(root: root, written) }
        Self.expectNoUploads(root, "after the refused changes")
        try Self.expectVerifies(root)
    }

    // MARK: - Cases 24, 25: concurrent and abandoned writers

    @Test func concurrentRightAndWrongWritersOfOneDigestAndAWriterThatNeverCloses() throws {
        let workspace = try Workspace("rw-hostile-writers")
        defer { workspace.remove() }
        let root = workspace.root
        try makeEmptyStore(root)
        let big = Self.blob("w/one", seededBytes(count: 32 << 20, seed: 12_200))
        let wrong = seededBytes(count: 32 << 20, seed: 12_201)
        let held = Self.blob("w/one", seededBytes(count: 2 << 20, seed: 12_202))

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            #expect(try Command.run("mkdir", ["-p", mount.path("repo/w/one/blobs"), mount.path("repo/w/two/blobs")]).status == 0)
            // Case 24: two right writers (one in another repository) and a wrong one, together.
            let inOther = StoredBlob(repository: "w/two", bytes: big.bytes, digest: big.digest)
            let writers: [(String, [UInt8])] = [(mount.path(big.relativePath), big.bytes), (mount.path(inOther.relativePath), big.bytes), (mount.path(big.relativePath), wrong)]
            let outcomes = Problems()
            let finished = onThreads(3, timeout: 120) { index in
                let outcome = writeThroughSyscalls(writers[index].0, writers[index].1, chunk: 128 << 10)
                outcomes.add("\(index) \(outcome.succeeded ? "ok" : outcome.close.map(\.description) ?? outcome.description)")
            }
            #expect(finished, "writers are stuck\n\(mount.log.tail(2000))")
            #expect(Set(outcomes.all) == ["0 ok", "1 ok", "2 \(Errno.EIO)"], "\(outcomes.all)\n\(mount.log.tail(2000))")
            expectCommitted(root: root, big)
            expectCommitted(root: root, inOther)
            #expect(!fileExists(dataPath(root: root, Digester.digest(of: wrong))), "the wrong bytes were stored")
            let dataFiles = try Command.run("find", [registryV2(root) + "/blobs", "-name", "data"]).stdoutText.split(separator: "\n")
            #expect(dataFiles.count == 1, "one data file: \(dataFiles)")
            Self.expectNoUploads(root, "after the concurrent writers")

            // Case 25: a writer that never closes. Its name is invisible to others …
            let heldPath = mount.path(held.relativePath)
            let fd = try Posix.open(heldPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC).get()
            #expect(held.bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, 1 << 20) } == 1 << 20)
            let stat = try Command.run("stat", [heldPath])
            #expect(stat.status != 0 && stat.stderrText.contains("No such file or directory"), "another process sees the upload: \(stat)")
            #expect(!(try listing(mount.path("repo/w/one/blobs"))).contains(held.digest.description))
            // … unmounting meanwhile is EBUSY …
            let umount = try Command.run("umount", [mount.mountpoint])
            #expect(umount.status != 0 && MountTable.isMounted(mount.mountpoint), "umount with an upload open: \(umount)")
            // … another writer commits the same digest …
            let source = workspace.path("held")
            try Posix.writeFile(source, held.bytes)
            let cp = try Command.run("cp", [source, heldPath])
            #expect(cp.status == 0, "\(cp)\n\(mount.log.tail(2000))")
            // … and the late close (half the bytes) is EIO; the committed blob is intact.
            #expect(syscallOutcome { Int(Glibc.close(fd)) } == .failed(.EIO), "the late close")
            #expect(readAndCompare(heldPath, expected: held.bytes, chunk: 1 << 20) == nil)
        }
        expectCommitted(root: root, held)
        Self.expectNoUploads(root, "at the end")
        try Self.expectVerifies(root)
    }

    // MARK: - Cases 27, 28: purge-uploads

    @Test func purgeUploadsNeverLeavesTheStoreAndAnActiveUploadPurgedCommitsNothing() throws {
        let workspace = try Workspace("rw-hostile-purge")
        defer { workspace.remove() }
        let root = workspace.root
        let existing = try writeStore(root: root, [("p/a", seededBytes(count: 1000, seed: 12_300))])[0]
        let old = Array("2020-01-01T00:00:00Z".utf8)
        let outside = try workspace.makeDirectory("outside")
        func upload(_ repository: String) -> String { "\(registryV2(root))/repositories/\(repository)/_uploads/\(UUID().uuidString.lowercased())" }
        func makeUpload(_ directory: String, startedAt: [UInt8]) throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Posix.writeFile(directory + "/startedat", startedAt)
            try Posix.writeFile(directory + "/data", [1, 2, 3])
        }
        // A symlinked <uuid>, to an outside directory that looks like an old upload.
        try makeUpload(outside + "/uuid-target", startedAt: old)
        let symlinkedUUID = upload("p/a")
        try FileManager.default.createDirectory(atPath: (symlinkedUUID as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        #expect(symlink(outside + "/uuid-target", symlinkedUUID) == 0)
        // A symlinked startedat.
        let symlinkedStartedAt = upload("p/a")
        try makeUpload(symlinkedStartedAt, startedAt: [])
        try Posix.writeFile(outside + "/startedat", old)
        #expect(unlink(symlinkedStartedAt + "/startedat") == 0 && symlink(outside + "/startedat", symlinkedStartedAt + "/startedat") == 0)
        // A symlinked _uploads.
        try makeUpload(outside + "/uploads/\(UUID().uuidString.lowercased())", startedAt: old)
        try FileManager.default.createDirectory(atPath: "\(registryV2(root))/repositories/p/b", withIntermediateDirectories: true)
        #expect(symlink(outside + "/uploads", "\(registryV2(root))/repositories/p/b/_uploads") == 0)
        // A symlink inside an old upload.
        let withLink = upload("p/a")
        try makeUpload(withLink, startedAt: old)
        try Posix.writeFile(outside + "/precious", Array("precious".utf8))
        #expect(symlink(outside + "/precious", withLink + "/link-out") == 0)
        // Garbage startedat: kept.
        let garbage = upload("p/a")
        try makeUpload(garbage, startedAt: Array("yesterday".utf8))
        // An upload in a name without _layers: purged.
        let noLayers = upload("nolayers/x")
        try makeUpload(noLayers, startedAt: old)
        let outsideBefore = try Command.run("find", [outside, "-printf", "%P %s %y\\n"]).stdoutText

        let dryRun = try runBlobfs(["purge-uploads", root, "--older-than", "1h", "--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun)")
        let purge = try runBlobfs(["purge-uploads", root, "--older-than", "1h"])
        #expect(purge.status == 0 || purge.status == 1, "\(purge)")
        let wouldPurge = Set(dryRun.stdoutText.split(separator: "\n").filter { $0.hasPrefix("would purge: ") }.map { $0.dropFirst("would purge: ".count) })
        let purged = Set(purge.stdoutText.split(separator: "\n").filter { $0.hasPrefix("purged: ") }.map { $0.dropFirst("purged: ".count) })
        #expect(wouldPurge == purged, "--dry-run is accurate:\n\(dryRun)\n\(purge)")
        #expect(purged.contains { $0.hasSuffix((withLink as NSString).lastPathComponent) } && purged.contains { $0.hasSuffix((noLayers as NSString).lastPathComponent) }, "\(purge)")
        #expect(!fileExists(withLink) && !fileExists(noLayers))
        #expect(purge.stdoutText.contains("kept (no start time): ") && purge.stdoutText.contains((garbage as NSString).lastPathComponent), "\(purge)")
        #expect(fileExists(garbage + "/data"))
        let outsideAfter = try Command.run("find", [outside, "-printf", "%P %s %y\\n"]).stdoutText
        #expect(outsideAfter == outsideBefore, "purge-uploads changed something outside the store")
        #expect(try Posix.readFile(outside + "/precious") == Array("precious".utf8))

        // Case 28: purge-uploads --older-than 0s while an upload is being written.
        let active = Self.blob("p/a", seededBytes(count: 200_000, seed: 12_301))
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let fd = try Posix.open(mount.path(active.relativePath), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC).get()
            #expect(active.bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, 100_000) } == 100_000)
            let uploads = Array(uploadDataSizes(root: root, repository: "p/a").keys)
            waitUntilStartedAtIsPast(uploads)
            let purgeActive = try runBlobfs(["purge-uploads", root, "--older-than", "0s"])
            #expect(purgeActive.stdoutText.contains(uploads.first ?? "-"), "the active upload is purged: \(purgeActive)")
            _ = active.bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + 100_000, 100_000) }
            // The hostile-input run saw ENOENT here; at this commit the close fails with EIO (and
            // a log line that calls it a content mismatch). What must hold: the close fails and
            // nothing is committed.
            let closed = syscallOutcome { Int(Glibc.close(fd)) }
            #expect(closed != .succeeded, "the writer's close after its upload was purged: \(closed)\n\(mount.log.tail(2000))")
            #expect(Posix.stat(mount.path(active.relativePath)).errno == .ENOENT)
        }
        expectNotCommitted(root: root, repository: "p/a", named: active.digest, canonical: active.canonical)
        expectCommitted(root: root, existing)
    }

    // MARK: - Case 29: inode exhaustion

    @Test func runningOutOfInodesIsENOSPCAndLeavesEarlierBlobsIntact() throws {
        let workspace = try Workspace("rw-hostile-inodes")
        defer { workspace.remove() }
        let root = try workspace.makeDirectory("small-store")
        let tmpfs = try TmpfsMount(at: root, size: "20m,nr_inodes=40")
        defer { tmpfs.unmount() }
        try makeEmptyStore(root)
        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            #expect(try Command.run("mkdir", ["-p", mount.path("repo/i/app/blobs")]).status == 0)
            var written: [StoredBlob] = []
            var failure: (StoredBlob, WriteOutcome)?
            for index in 0..<40 {
                let blob = Self.blob("i/app", seededBytes(count: 1000 + index, seed: 12_400 + UInt64(index)))
                let outcome = writeThroughSyscalls(mount.path(blob.relativePath), blob.bytes)
                if outcome.succeeded {
                    written.append(blob)
                } else {
                    failure = (blob, outcome)
                    break
                }
            }
            let (failed, outcome) = try #require(failure, "40 inodes never ran out")
            #expect(outcome.firstError == Errno(ENOSPC), "out of inodes: \(outcome)\n\(mount.log.tail(2000))")
            #expect(!written.isEmpty, "no blob fitted at all")
            #expect(Posix.stat(mount.path(failed.relativePath)).errno == .ENOENT, "the blob that did not fit is visible")
            #expect(try listing(mount.path("repo/i/app/blobs")) == Set(written.map(\.digest.description)))
            for blob in written {
                #expect(readAndCompare(mount.path(blob.relativePath), expected: blob.bytes, chunk: 1 << 20) == nil, "\(blob)")
            }
        }
        Self.expectNoUploads(root, "after running out of inodes")
        try Self.expectVerifies(root)
    }

    // MARK: - Case 30: empty and large sparse blobs

    @Test func emptyBlobsByCpAndTouchAndASparseBlobPastTwoGiBCommitAndReadBack() throws {
        let workspace = try Workspace("rw-hostile-sparse")
        defer { workspace.remove() }
        let root = workspace.root
        try makeEmptyStore(root)
        // 2 GiB of holes, then 100 bytes of data: the tail is past 2^31.
        let size = (2 << 30) + 100
        let tail = seededBytes(count: 100, seed: 12_500)
        let source = workspace.path("sparse")
        try Posix.writeFile(source, [])
        let fd = try Posix.open(source, O_WRONLY | O_CLOEXEC).get()
        #expect(tail.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress, 100, off_t(2 << 30)) } == 100)
        close(fd)
        let digest = try Digest(parsing: "sha256:" + (try sha256Hex(ofFile: source)))
        let sparse = StoredBlob(repository: "big/app", bytes: [], digest: digest)  // bytes not kept in memory
        let empty = Self.blob("big/app", [])
        let emptySource = workspace.path("empty")
        try Posix.writeFile(emptySource, [])

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            #expect(try Command.run("mkdir", ["-p", mount.path("repo/big/app/blobs"), mount.path("repo/big/touch/blobs")]).status == 0)
            let cpEmpty = try Command.run("cp", [emptySource, mount.path(empty.relativePath)])
            #expect(cpEmpty.status == 0, "cp of a 0-byte blob: \(cpEmpty)")
            let touch = try Command.run("touch", [mount.path("repo/big/touch/blobs/\(empty.digest)")])
            #expect(touch.status == 0, "touch of the empty digest: \(touch)\n\(mount.log.tail(2000))")
            #expect(Posix.stat(mount.path("repo/big/touch/blobs/\(empty.digest)")).map { Int($0.st_size) } == .success(0))

            let cp = try Command.run("cp", ["--sparse=always", source, mount.path(sparse.relativePath)], timeout: 300)
            #expect(cp.status == 0, "cp --sparse=always of \(size) bytes: \(cp)\n\(mount.log.tail(2000))")
            let path = mount.path(sparse.relativePath)
            #expect(Posix.stat(path).map { Int($0.st_size) } == .success(size))
            let read = try Posix.open(path, O_RDONLY | O_CLOEXEC).get()
            defer { close(read) }
            #expect(Posix.pread(read, count: 200, at: Int64(2 << 30) - 100) == .success([UInt8](repeating: 0, count: 100) + tail), "the bytes around 2 GiB")
            #expect(Posix.pread(read, count: 10, at: Int64(size)) == .success([]))
        }
        expectCommitted(root: root, empty)
        expectCommitted(root: root, StoredBlob(repository: "big/touch", bytes: [], digest: empty.digest))
        for link in [linkPath(root: root, repository: "big/app", digest)] {
            #expect((try? Posix.readFile(link)) == Array(digest.description.utf8), "the sparse blob's link")
        }
        #expect(Posix.stat(dataPath(root: root, digest)).map { Int($0.st_size) } == .success(size))
        Self.expectNoUploads(root, "after the sparse copy")
    }

    // MARK: - Case 32: a read-write mount over a hostile store

    @Test func aReadWriteMountOverAStoreThatSymlinksOutWritesNothingOutside() throws {
        let workspace = try Workspace("rw-hostile-symlinks")
        defer { workspace.remove() }
        let root = workspace.root
        let existing = try writeStore(root: root, [
            ("s/layers", seededBytes(count: 1000, seed: 12_600)), ("s/uploads", seededBytes(count: 1001, seed: 12_601)),
            ("s/prefix", seededBytes(count: 1002, seed: 12_602)),
        ])
        let outside = try workspace.makeDirectory("outside")
        for name in ["layers", "uploads", "prefix", "repository"] { try Posix.makeDirectory(outside + "/" + name) }
        // Symlinked _layers and _uploads, a symlinked repositories/<name>, a symlinked blobs/sha256/<xx>.
        let layers = layersPath(root: root, repository: "s/layers")
        #expect(rename(layers, outside + "/layers/_layers") == 0 && symlink(outside + "/layers/_layers", layers) == 0)
        let uploads = "\(registryV2(root))/repositories/s/uploads/_uploads"
        if fileExists(uploads) { #expect(rmdir(uploads) == 0) }
        #expect(symlink(outside + "/uploads", uploads) == 0)
        #expect(symlink(outside + "/repository", "\(registryV2(root))/repositories/s/linked") == 0)
        let prefixed = Self.blob("s/prefix", seededBytes(count: 2000, seed: 12_603))
        let prefixDirectory = "\(registryV2(root))/blobs/sha256/\(prefixed.canonical.hex.prefix(2))"
        if !fileExists(prefixDirectory) { try Posix.makeDirectory(prefixDirectory) }
        #expect(rename(prefixDirectory, outside + "/prefix/xx") == 0 && symlink(outside + "/prefix/xx", prefixDirectory) == 0)
        let outsideBefore = try Command.run("find", [outside, "-printf", "%P %s %y\\n"]).stdoutText

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let targets = [
                Self.blob("s/layers", seededBytes(count: 3000, seed: 12_604)), Self.blob("s/uploads", seededBytes(count: 3001, seed: 12_605)),
                Self.blob("s/linked", seededBytes(count: 3002, seed: 12_606)), prefixed,
            ]
            for blob in targets {
                let outcome = writeThroughSyscalls(mount.path(blob.relativePath), blob.bytes)
                #expect(outcome.firstError == .EIO || outcome.firstError == .ENOENT, "\(blob) in a symlinked part of the store: \(outcome)")
            }
            let mkdir = syscallOutcome { Int(Glibc.mkdir(mount.path("repo/s/linked/blobs"), 0o755)) }
            #expect(mkdir != .succeeded, "mkdir through a symlinked repository: \(mkdir)")
            #expect(readAndCompare(mount.path(existing[1].relativePath), expected: existing[1].bytes, chunk: 1 << 20) == nil)
        }
        let outsideAfter = try Command.run("find", [outside, "-printf", "%P %s %y\\n"]).stdoutText
        #expect(outsideAfter == outsideBefore, "written outside the store:\n\(outsideAfter)")
    }
}
