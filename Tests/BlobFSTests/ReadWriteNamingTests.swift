import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// What a read-write mount accepts as a new file in `blobs/`, with real tools (docs/hostile-input.md, F6, F13):
/// a name that can never become a blob is refused at create with EINVAL and a log line, so cp,
/// rsync and tar fail instead of "succeeding" into a file that unmount throws away; symbolic
/// links, FIFOs and devices are EPERM; an upload renames only onto its digest in its own
/// directory. (The warnings for uploads thrown away: DiscardedUploadTests.)
@Suite struct ReadWriteNamingTests {
    static func blob(_ repository: String, _ bytes: [UInt8]) -> StoredBlob {
        StoredBlob(repository: repository, bytes: bytes, digest: Digester.digest(of: bytes))
    }

    /// The line that says which names are accepted (UploadName.Refusal.accepted).
    static let acceptedNames = "blobs/ accepts only digest names"

    // MARK: - F6: names that can never become a blob

    @Test func misnamedCopiesAreRefusedAtCreateAndNothingIsListedStoredOrLeft() throws {
        let workspace = try Workspace("rw-names")
        defer { workspace.remove() }
        let root = workspace.root
        let existing = try writeStore(root: root, [("name/app", seededBytes(count: 10_000, seed: 12_000))])[0]
        let content = seededBytes(count: 3000, seed: 12_001)
        let digest = Digester.digest(of: content)
        let source = workspace.path("blob")
        try Posix.writeFile(source, content)
        // The tree and the archive of a restore from `blobs/sha256/xx/<hex>/data`: bare hex names.
        let misnamedTree = try workspace.makeDirectory("misnamed")
        try FileManager.default.createDirectory(atPath: misnamedTree + "/repo/name/app/blobs", withIntermediateDirectories: true)
        try Posix.writeFile(misnamedTree + "/repo/name/app/blobs/\(digest.hex)", content)
        let archive = workspace.path("misnamed.tar")
        try #require(try Command.run("tar", ["-c", "-f", archive, "-C", misnamedTree, "repo"]).status == 0)
        let misnamed = [digest.hex, "sha256-\(digest.hex)", "layer.tar.gz"]

        let mount = try BlobfsMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions)
        defer { mount.stop() }
        let blobs = mount.path("repo/name/app/blobs")
        for name in misnamed {
            let cp = try Command.run("cp", [source, "\(blobs)/\(name)"])
            #expect(cp.status != 0 && cp.stderrText.contains("Invalid argument"), "cp to \(name): \(cp)\n\(mount.log.tail(2000))")
            let opened = Posix.open("\(blobs)/\(name)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
            if case .success(let fd) = opened { close(fd) }
            #expect(opened.errno == Errno(EINVAL), "open O_CREAT \(name): \(opened)")
            #expect(Posix.stat("\(blobs)/\(name)").errno == .ENOENT, "\(name) is visible after a refused create")
        }
        // rsync -a of the bare-hex tree: refused at its mkstemp, before it sends the data.
        let rsync = try Command.run("rsync", ["-a", misnamedTree + "/", mount.mountpoint + "/"])
        #expect(rsync.status != 0 && rsync.stderrText.contains("Invalid argument"), "rsync -a of bare hex names: \(rsync)")
        let untar = try Command.run("tar", ["-x", "-f", archive, "-C", mount.mountpoint])
        #expect(untar.status != 0 && untar.stderrText.contains("Invalid argument"), "tar -x of bare hex names: \(untar)")

        // A temporary file renamed onto a name that is no digest: EINVAL; it stays, and its
        // rename onto its digest still commits it.
        let temporary = "\(blobs)/.\(digest).AbC123"
        #expect(writeThroughSyscalls(temporary, content, flags: O_RDWR | O_CREAT | O_EXCL).succeeded)
        let renamed = syscallOutcome { Int(Glibc.rename(temporary, "\(blobs)/layer.tar.gz")) }
        #expect(renamed == .failed(Errno(EINVAL)), "rename of an upload onto layer.tar.gz: \(renamed)")
        #expect(try listing(blobs) == [existing.digest.description, ".\(digest).AbC123"])
        #expect(syscallOutcome { Int(Glibc.rename(temporary, "\(blobs)/\(digest)")) } == .succeeded)
        #expect(try listing(blobs) == [existing.digest.description, digest.description])

        // Each refusal is one log line naming the file and the names that are accepted; the
        // bare hex ones suggest the digest.
        let log = mount.log
        for name in misnamed + [".\(digest.hex).", "layer.tar.gz\""] {
            #expect(logLines(log, mentioning: name).contains { $0.contains(" error ") && $0.contains(Self.acceptedNames) }, "no refusal line for \(name):\n\(log.tail(3000))")
        }
        #expect(log.contains("did you mean \(digest)?"), "the bare hex name gets its digest suggested:\n\(log.tail(3000))")
        let stopped = mount.stop()
        #expect(stopped.isClean, "\(stopped)")
        #expect(discardWarnings(in: mount.log).isEmpty, "nothing was accepted, so nothing was discarded:\n\(mount.log.tail(2000))")

        // Only the renamed upload reached the store; no upload is left.
        expectCommitted(root: root, StoredBlob(repository: "name/app", bytes: content, digest: digest))
        let links = try FileManager.default.contentsOfDirectory(atPath: registryV2(root) + "/repositories/name/app/_layers/sha256")
        #expect(Set(links) == [existing.digest.hex, digest.hex], "links after the refusals: \(links)")
        #expect(uploadEntries(root: root).isEmpty, "uploads left: \(uploadEntries(root: root))")
        let verify = try runBlobfs(["verify", root])
        #expect(verify.status == 0, "\(verify)")
    }

    /// The restore tools' other forms still work with the naming rule: `cp -a` of a tree, rsync
    /// with `--temp-dir` outside the mount, and tar over blobs that are already there (plain
    /// tar: "File exists" for those, the others restored; `--overwrite` and `--skip-old-files`
    /// succeed).
    @Test func cpDashARsyncTempDirAndTarOverExistingBlobsRestoreCorrectly() throws {
        let workspace = try Workspace("rw-tools")
        defer { workspace.remove() }
        let root = workspace.root
        let existing = try writeStore(root: root, [("tools/app", seededBytes(count: 70_000, seed: 12_100))])[0]
        let copied = [Self.blob("tools/app", seededBytes(count: 300_001, seed: 12_101)), Self.blob("tools/app/sub", seededBytes(count: 5, seed: 12_102))]
        let rsynced = Self.blob("tools/app", seededBytes(count: 40_000, seed: 12_103))
        let untarred = Self.blob("tools/app", seededBytes(count: 123_456, seed: 12_104))
        let cpTree = try workspace.makeDirectory("cp-src")
        try layOut(copied, under: cpTree)
        let rsyncTree = try workspace.makeDirectory("rsync-src")
        try layOut([rsynced], under: rsyncTree)
        let rsyncTemp = try workspace.makeDirectory("rsync-temp")
        let tarTree = try workspace.makeDirectory("tar-src")
        try layOut([existing, untarred], under: tarTree)
        let archive = workspace.path("restore.tar")
        try #require(try Command.run("tar", ["-c", "-f", archive, "-C", tarTree, "repo"]).status == 0)

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let cp = try Command.run("cp", ["-a", cpTree + "/repo", mount.mountpoint + "/"])
            #expect(cp.status == 0, "cp -a of a blob tree: \(cp)\n\(mount.log.tail(2000))")
            let rsync = try Command.run("rsync", ["-a", "--temp-dir=\(rsyncTemp)", rsyncTree + "/", mount.mountpoint + "/"])
            #expect(rsync.status == 0, "rsync -a --temp-dir outside the mount: \(rsync)\n\(mount.log.tail(2000))")

            // Plain tar -x: the existing blob fails (create EEXIST, its unlink EPERM), the new one is restored.
            let untar = try Command.run("tar", ["-x", "-f", archive, "-C", mount.mountpoint])
            #expect(untar.status == 2 && untar.stderrText.contains("\(existing.digest.hex): Cannot open: File exists"), "tar -x over an existing blob: \(untar)")
            #expect(!untar.stderrText.contains(untarred.digest.hex), "tar -x failed on the new blob: \(untar)")
            for options in [["--overwrite"], ["--skip-old-files"]] {
                let again = try Command.run("tar", ["-x"] + options + ["-f", archive, "-C", mount.mountpoint])
                #expect(again.status == 0 && again.stderr.isEmpty, "tar -x \(options) over existing blobs: \(again)\n\(mount.log.tail(2000))")
            }
            try expectTree(mount.path("repo"), holds: [existing, rsynced, untarred] + copied, stripping: "repo/", "after cp -a, rsync --temp-dir and tar -x")
            #expect(discardWarnings(in: mount.log).isEmpty, "\(mount.log.tail(2000))")
        }
        for blob in [existing, rsynced, untarred] + copied { expectCommitted(root: root, blob) }
        #expect(uploadEntries(root: root).isEmpty, "uploads left: \(uploadEntries(root: root))")
        let verify = try runBlobfs(["verify", root])
        #expect(verify.status == 0, "\(verify)")
    }

    /// GNU `cp -a` makes each directory it copies into a directory it made itself without looking
    /// first, in its source's inode order. A manifest written first makes the repository's
    /// `blobs/` exist in the store; the kernel's LOOKUP then found it and answered the `mkdir` of
    /// `blobs/` with EEXIST itself ("cannot create directory: File exists", seen in full runs of
    /// the restore tests). A section of a repository made through the mount is shown once made.
    @Test func aSectionAManifestBroughtIsMadeWithoutErrorInARepositoryMadeHere() throws {
        let workspace = try Workspace("rw-sections")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("other/app", seededBytes(count: 10, seed: 12_150))])
        let config = Array("{}".utf8)
        let manifest = Array(("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
            + "\"application/vnd.oci.image.config.v1+json\",\"size\":2,\"digest\":\"\(Digester.digest(of: config))\"},\"layers\":[]}").utf8)
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let repository = mount.path("repo/fresh/app")
            for directory in [mount.path("repo/fresh"), repository, repository + "/manifests"] {
                #expect(Glibc.mkdir(directory, 0o755) == 0, "mkdir \(directory): \(Errno(errno))")
            }
            let written = writeThroughSyscalls(repository + "/manifests/\(Digester.digest(of: manifest))", manifest, flags: O_WRONLY | O_CREAT | O_EXCL)
            #expect(written.succeeded, "the manifest: \(written)\n\(mount.log.tail(2000))")
            #expect(FileManager.default.fileExists(atPath: workspace.root + "/docker/registry/v2/repositories/fresh/app/_layers"), "the store has the repository's blobs")
            let before = try listing(repository)
            #expect(before == ["manifests"], "a section not made yet through the mount")
            #expect(Glibc.mkdir(repository + "/blobs", 0o755) == 0, "mkdir of blobs/ after the manifest: \(Errno(errno))")
            let blob = Self.blob("fresh/app", config)
            let copied = writeThroughSyscalls(repository + "/blobs/\(blob.digest)", config, flags: O_WRONLY | O_CREAT | O_EXCL)
            #expect(copied.succeeded, "a blob into the section made: \(copied)")
            let after = try listing(repository)
            #expect(after == ["blobs", "manifests"])
            let blobs = try listing(repository + "/blobs")
            #expect(blobs == [blob.digest.description])
        }
    }

    // MARK: - F13: symbolic links, FIFOs, devices

    @Test func symlinksFifosAndDevicesAreRefusedWithEPERMAndARegularMknodIsACreate() throws {
        let workspace = try Workspace("rw-special")
        defer { workspace.remove() }
        let root = workspace.root
        let existing = try writeStore(root: root, [("special/app", seededBytes(count: 1000, seed: 12_200))])[0]
        let content = seededBytes(count: 2000, seed: 12_201)
        let digest = Digester.digest(of: content)
        let other = Digester.digest(of: seededBytes(count: 10, seed: 12_202))

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let blobs = mount.path("repo/special/app/blobs")
            // The tools: ln -s and mkfifo say "Operation not permitted" (not "Function not implemented").
            for (tool, arguments) in [("ln", ["-s", "/etc/passwd", "\(blobs)/x"]), ("ln", ["-s", "x", mount.path("repo/special/link")]), ("mkfifo", ["\(blobs)/\(digest)"])] {
                let result = try Command.run(tool, arguments)
                #expect(result.status != 0 && result.stderrText.contains("Operation not permitted"), "\(tool) \(arguments): \(result)")
            }
            // The system calls, for every kind of special file.
            #expect(syscallOutcome { Int(Glibc.symlink("x", "\(blobs)/\(digest)")) } == .failed(.EPERM))
            for (kind, mode) in [("FIFO", S_IFIFO), ("character device", S_IFCHR), ("block device", S_IFBLK), ("socket", S_IFSOCK)] {
                let made = syscallOutcome { Int(Glibc.mknod("\(blobs)/\(digest)", mode | 0o644, 0)) }
                #expect(made == .failed(.EPERM), "mknod of a \(kind): \(made)")
            }
            #expect(try listing(blobs) == [existing.digest.description])
            #expect(mount.log.contains("refusing a symbolic link") && mount.log.contains("refusing to make a FIFO")
                && mount.log.contains("refusing to make a character device"), "the refusals are logged:\n\(mount.log.tail(3000))")

            // mknod of a regular file is a create and a close: the empty blob commits, another
            // digest cannot be empty (EIO), a temporary name is an upload to write and rename.
            #expect(syscallOutcome { Int(Glibc.mknod("\(blobs)/\(Digest.emptySHA256)", S_IFREG | 0o644, 0)) } == .succeeded)
            #expect(syscallOutcome { Int(Glibc.mknod("\(blobs)/\(other)", S_IFREG | 0o644, 0)) } == .failed(.EIO))
            let temporary = "\(blobs)/.\(digest).q1W2e3"
            #expect(syscallOutcome { Int(Glibc.mknod(temporary, S_IFREG | 0o600, 0)) } == .succeeded)
            #expect(writeThroughSyscalls(temporary, content, flags: O_WRONLY).succeeded, "write of a mknod'ed temporary name")
            #expect(syscallOutcome { Int(Glibc.rename(temporary, "\(blobs)/\(digest)")) } == .succeeded)
            #expect(try listing(blobs) == [existing.digest.description, Digest.emptySHA256.description, digest.description])
        }
        expectCommitted(root: root, StoredBlob(repository: "special/app", bytes: [], digest: Digest.emptySHA256))
        expectCommitted(root: root, StoredBlob(repository: "special/app", bytes: content, digest: digest))
        #expect(!fileExists(linkPath(root: root, repository: "special/app", other)))
        #expect(uploadEntries(root: root).isEmpty, "uploads left: \(uploadEntries(root: root))")
    }

    // MARK: - F13: renames of uploads

    /// An upload renames onto its digest in its own `blobs/` only: to another temporary name or
    /// onto one, EPERM (no tool we support does it); into another repository, EPERM (not EXDEV:
    /// mv would fall back to copying, and an upload cannot be read); onto a name that is no
    /// digest, EINVAL. Each leaves the upload as it was.
    @Test func anUploadRenamesOnlyOntoItsDigestInItsOwnDirectory() throws {
        let workspace = try Workspace("rw-rename")
        defer { workspace.remove() }
        let root = workspace.root
        try writeStore(root: root, [("ren/a", seededBytes(count: 100, seed: 12_300)), ("ren/b", seededBytes(count: 100, seed: 12_301))])
        let content = seededBytes(count: 50_000, seed: 12_302)
        let digest = Digester.digest(of: content)

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint, options: readWriteOptions) { mount in
            let blobs = mount.path("repo/ren/a/blobs")
            let first = "\(blobs)/.\(digest).Tmp003"
            let second = "\(blobs)/.\(digest).Tmp004"
            #expect(writeThroughSyscalls(first, content, flags: O_RDWR | O_CREAT | O_EXCL).succeeded)
            let before = try listing(blobs)

            #expect(syscallOutcome { Int(Glibc.rename(first, second)) } == .failed(.EPERM), "temporary to temporary")
            #expect(writeThroughSyscalls(second, content, flags: O_RDWR | O_CREAT | O_EXCL).succeeded)
            #expect(syscallOutcome { Int(Glibc.rename(first, second)) } == .failed(.EPERM), "temporary onto an existing temporary")
            let mv = try Command.run("mv", [first, second])
            #expect(mv.status != 0 && mv.stderrText.contains("Operation not permitted"), "mv temporary onto temporary: \(mv)")
            let other = mount.path("repo/ren/b/blobs/\(digest)")
            #expect(syscallOutcome { Int(Glibc.rename(first, other)) } == .failed(.EPERM), "into another repository")
            let mvAcross = try Command.run("mv", [first, other])
            #expect(mvAcross.status != 0 && mvAcross.stderrText.contains("Operation not permitted") && !mvAcross.stderrText.contains("Permission denied"),
                "mv into another repository: \(mvAcross)")
            #expect(Posix.stat(other).errno == .ENOENT)
            #expect(try listing(blobs) == before.union([".\(digest).Tmp004"]), "the uploads are where they were")
            #expect(mount.log.contains("can only be renamed to the digest of its content") && mount.log.contains("in the blobs/ directory it was created in"),
                "the refusals are logged:\n\(mount.log.tail(3000))")

            // Both still commit by a rename onto the digest (the second one finds the blob there).
            for temporary in [first, second] {
                #expect(syscallOutcome { Int(Glibc.rename(temporary, "\(blobs)/\(digest)")) } == .succeeded, "\(temporary)\n\(mount.log.tail(2000))")
            }
            #expect(try listing(blobs).filter { $0.hasPrefix(".") }.isEmpty)
        }
        expectCommitted(root: root, StoredBlob(repository: "ren/a", bytes: content, digest: digest))
        #expect(!fileExists(linkPath(root: root, repository: "ren/b", digest)))
        #expect(uploadEntries(root: root).isEmpty, "uploads left: \(uploadEntries(root: root))")
    }
}
