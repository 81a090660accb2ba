import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// A store written by Debian's real docker-registry over its HTTP API, mounted read-only by the
/// `blobfs` executable and driven with real tools: find, ls, stat, sha256sum, getfattr, df,
/// rsync, tar, cp.
@Suite struct RegistryStoreMountTests {
    /// What the registry wrote, and what must not be visible.
    struct PushedStore {
        /// Every file the mount must show, one per (repository, linked digest).
        var blobs: [StoredBlob] = []
        /// Digest of a manifest pushed to library/alpine (stored in blobs/, linked as a manifest only).
        var manifest: Digest
        /// Linked only in team/app/web.
        var webOnly: StoredBlob
        /// Linked only in "lonely".
        var lonely: StoredBlob
        /// The sha512 alias, linked only in raw/sha512.
        var alias: StoredBlob
    }

    /// Pushes blobs of bytes to a few MiB into several repositories, nested names, a component
    /// named `blobs`, a sha512 digest, a cross-repository mount and a manifest; stops the registry.
    static func pushStore(root: String) throws -> PushedStore {
        try RegistryServer.withServer(root: root) { server in
            let client = server.client
            var blobs: [StoredBlob] = []
            func push(_ repository: String, _ bytes: [UInt8], digest: Digest? = nil, chunk: Int? = nil) throws -> StoredBlob {
                let blob = try pushBlob(client, repository, bytes, digest: digest, chunk: chunk, log: server.log.tail(2000))
                blobs.append(blob)
                return blob
            }

            let alpine = try push("library/alpine", seededBytes(count: 100_000, seed: 1))
            _ = try push("library/alpine", seededBytes(count: 1, seed: 2))
            _ = try push("library/alpine", [])
            let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
            let configBlob = try push("library/alpine", config)
            _ = try push("team/app", seededBytes(count: 70_001, seed: 3))
            let webOnly = try push("team/app/web", seededBytes(count: (3 << 20) + 17, seed: 4), chunk: 1 << 20)
            _ = try push("team/app/web", seededBytes(count: (2 << 20) + 5, seed: 5))
            let aliasBytes = seededBytes(count: 5000, seed: 6)
            let alias = try push("raw/sha512", aliasBytes, digest: Digester.digest(of: aliasBytes, algorithm: .sha512))
            // The registry links the canonical digest next to the alias.
            blobs.append(StoredBlob(repository: "raw/sha512", bytes: aliasBytes, digest: Digester.digest(of: aliasBytes)))
            _ = try push("edge", seededBytes(count: 4096, seed: 7))
            _ = try push("edge/blobs/deep", seededBytes(count: 12_345, seed: 8))
            let lonely = try push("lonely", seededBytes(count: 33_333, seed: 9))

            let mounted = try client.mount(repository: "team/mounted", from: "library/alpine", digest: "\(alpine.digest)")
            guard mounted.status == 201 else {
                throw TestSupportError("cross-repository mount: \(mounted.status) \(mounted.text)")
            }
            blobs.append(StoredBlob(repository: "team/mounted", bytes: alpine.bytes, digest: alpine.digest))

            let manifestJSON = """
                {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",\
                "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":\(config.count),"digest":"\(configBlob.digest)"},\
                "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":\(alpine.bytes.count),"digest":"\(alpine.digest)"}]}
                """
            let manifestBytes = Array(manifestJSON.utf8)
            let put = try client.send(
                "PUT", url: "/v2/library/alpine/manifests/v1",
                headers: ["Content-Type": "application/vnd.docker.distribution.manifest.v2+json"], body: manifestBytes)
            guard put.status == 201 else {
                throw TestSupportError("manifest PUT: \(put.status) \(put.text)\n\(server.log.tail(2000))")
            }
            let manifest = Digester.digest(of: manifestBytes)
            #expect(put.header("Docker-Content-Digest") == "\(manifest)")
            return PushedStore(blobs: blobs, manifest: manifest, webOnly: webOnly, lonely: lonely, alias: alias)
        }
    }

    @Test func registryStoreMountedReadOnlyServesEveryBlobToRealTools() throws {
        let workspace = try Workspace("registry")
        defer { workspace.remove() }
        let store = try Self.pushStore(root: workspace.root)
        let root = workspace.root
        // The data behind the digests that must be ENOENT is really in the store: only links decide.
        #expect(FileManager.default.fileExists(atPath: dataPath(root: root, store.manifest)), "the manifest's data")
        #expect(FileManager.default.fileExists(atPath: dataPath(root: root, store.webOnly.canonical)))
        let storeBefore = try Command.run("find", [root, "-printf", "%P %s %T@\\n"]).stdoutText

        try BlobfsMount.withMount(root: root, mountpoint: workspace.mountpoint) { mount in
            #expect(mount.entry.fileSystemType == "fuse.blobfs", "mount: \(mount.entry)")
            #expect(mount.entry.isReadOnly, "blobfs mount must be read-only by default: \(mount.entry)")

            // The tree: exactly one file per linked digest, right size, mode, bytes.
            try expectTree(mount.mountpoint, holds: store.blobs, "the mount")
            for blob in store.blobs {
                let path = mount.path(blob.relativePath)
                switch Posix.stat(path) {
                case .success(let info):
                    #expect(info.st_mode & S_IFMT == S_IFREG && info.st_mode & 0o7777 == 0o444, "\(blob): mode \(String(info.st_mode, radix: 8))")
                    #expect(Int(info.st_size) == blob.bytes.count, "\(blob): st_size \(info.st_size)")
                case .failure(let error):
                    Issue.record("stat \(blob.relativePath): \(error)\n\(mount.log.tail(2000))")
                }
            }
            let sha512File = mount.path(store.alias.relativePath)
            #expect(try sha512Hex(ofFile: sha512File) == store.alias.digest.hex, "the sha512 alias file has the alias's bytes")

            // ENOENT: linked only elsewhere, a manifest, never pushed, an alias of another repository, bad names.
            let neverPushed = Digester.digest(of: Array("never pushed".utf8))
            let absent = [
                "repo/library/alpine/blobs/\(store.webOnly.digest)",
                "repo/team/app/blobs/\(store.webOnly.digest)",  // the parent repository does not see its child's blobs
                "repo/library/alpine/blobs/\(store.lonely.digest)",
                "repo/library/alpine/blobs/\(store.manifest)",
                "repo/library/alpine/blobs/\(neverPushed)",
                "repo/library/alpine/blobs/\(store.alias.digest)",
                "repo/library/alpine/blobs/sha256:0123",
                "repo/library/alpine/blobs/not-a-digest",
                "repo/no/such/repository",
                "repo/library/alpine/_layers",
            ]
            for relative in absent {
                #expect(Posix.stat(mount.path(relative)).errno == .ENOENT, "stat \(relative)")
                let opened = Posix.open(mount.path(relative), O_RDONLY)
                if case .success(let fd) = opened { close(fd) }
                #expect(opened.errno == .ENOENT, "open \(relative)")
            }

            // ls -R, ls -lR, stat.
            let ls = try Command.run("ls", ["-R", mount.mountpoint])
            #expect(ls.status == 0 && ls.stderr.isEmpty, "\(ls)")
            for blob in store.blobs {
                #expect(ls.stdoutText.contains(blob.digest.description), "ls -R lists \(blob)")
            }
            // The manifest is a revision, not a blob: listed once, in manifests/, and named by its tag.
            #expect(ls.stdoutText.components(separatedBy: store.manifest.hex).count == 2, "ls -R lists the manifest once")
            #expect(try listing(mount.path("repo/library/alpine/manifests")) == ["\(store.manifest)"])
            #expect(!(try listing(mount.path("repo/library/alpine/blobs")).contains("\(store.manifest)")))
            let tag = mount.path("repo/library/alpine/tags/v1")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: tag) == "../manifests/\(store.manifest)")
            #expect(try sha256Hex(ofFile: tag) == store.manifest.hex, "reading through the tag gives the manifest's bytes")
            let mediaType = try Command.run("getfattr", ["--only-values", "-n", "user.blobfs.mediatype", mount.path("repo/library/alpine/manifests/\(store.manifest)")])
            #expect(mediaType.stdoutText == "application/vnd.docker.distribution.manifest.v2+json", "\(mediaType)")
            let lsLong = try Command.run("ls", ["-lR", mount.mountpoint])
            #expect(lsLong.status == 0 && lsLong.stderr.isEmpty, "\(lsLong)")
            for blob in store.blobs.prefix(4) {
                let stat = try Command.run("stat", ["-c", "%s %a %F", mount.path(blob.relativePath)])
                let kind = blob.bytes.isEmpty ? "regular empty file" : "regular file"
                #expect(stat.status == 0 && stat.stdoutText == "\(blob.bytes.count) 444 \(kind)\n", "\(stat)")
            }
            let statDirectory = try Command.run("stat", ["-c", "%F", mount.path("repo/team/app/web/blobs")])
            #expect(statDirectory.stdoutText == "directory\n", "\(statDirectory)")

            // getfattr: every blob shows its canonical digest and size; listing never fails, anywhere.
            for blob in store.blobs {
                let attributes = try Command.run("getfattr", ["-d", mount.path(blob.relativePath)])
                #expect(attributes.status == 0, "\(attributes)")
                #expect(attributes.stdoutText.contains("=\"\(blob.canonical)\""), "getfattr -d \(blob) shows the canonical digest: \(attributes)")
                #expect(attributes.stdoutText.contains("=\"\(blob.bytes.count)\""), "getfattr -d \(blob) shows the size: \(attributes)")
            }
            let allAttributes = try Command.run("getfattr", ["--absolute-names", "-R", "-d", "-m", "-", mount.mountpoint])
            #expect(allAttributes.status == 0 && allAttributes.stderr.isEmpty, "\(allAttributes)")

            // df: the backing filesystem's real numbers.
            let dfMount = try Command.run("df", ["--output=size,itotal", mount.mountpoint])
            let dfRoot = try Command.run("df", ["--output=size,itotal", root])
            #expect(dfMount.status == 0, "\(dfMount)")
            #expect(dfMount.stdoutText == dfRoot.stdoutText, "df of the mount vs the storage root:\n\(dfMount.stdoutText)\n\(dfRoot.stdoutText)")

            // rsync -a copies every blob; a second run transfers nothing.
            let copy = try workspace.makeDirectory("rsync")
            let rsync = try Command.run("rsync", ["-a", mount.mountpoint + "/", copy + "/"], timeout: 120)
            #expect(rsync.status == 0, "\(rsync)\n\(mount.log.tail(2000))")
            try expectTree(copy, holds: store.blobs, "rsync -a copy")
            let again = try Command.run("rsync", ["-a", "--itemize-changes", mount.mountpoint + "/", copy + "/"], timeout: 120)
            #expect(again.status == 0 && again.stdoutText.isEmpty, "second rsync must transfer nothing: \(again)")

            // tar -c of a repository directory (with a nested repository below it) extracts to the same bytes.
            let archive = workspace.path("team.tar")
            let tar = try Command.run("tar", ["-c", "-f", archive, "-C", mount.path("repo"), "team"], timeout: 120)
            #expect(tar.status == 0 && tar.stderr.isEmpty, "\(tar)")
            let extracted = try workspace.makeDirectory("untar")
            let untar = try Command.run("tar", ["-x", "-f", archive, "-C", extracted])
            #expect(untar.status == 0, "\(untar)")
            try expectTree(extracted, holds: store.blobs.filter { $0.repository.hasPrefix("team/") }, stripping: "repo/", "tar of repo/team")

            // cp -a of a repository (preserving what it can, xattrs included) copies the same bytes.
            let cpTarget = workspace.path("cp-a")
            let cp = try Command.run("cp", ["-a", mount.path("repo/library"), cpTarget], timeout: 120)
            #expect(cp.status == 0 && cp.stderr.isEmpty, "\(cp)")
            try expectTree(cpTarget, holds: store.blobs.filter { $0.repository == "library/alpine" }, stripping: "repo/library/", "cp -a of repo/library")

            try expectEveryMutationIsReadOnly(mount)
        }
        let storeAfter = try Command.run("find", [root, "-printf", "%P %s %T@\\n"]).stdoutText
        #expect(storeAfter == storeBefore, "a read-only mount changed the store")
    }

    /// write, create, mkdir, unlink, rmdir, rename, link, symlink, chmod, chown, truncate, utimes,
    /// setxattr and removexattr all fail with EROFS, called directly so the errno is exact.
    func expectEveryMutationIsReadOnly(_ mount: BlobfsMount) throws {
        let blobsDirectory = mount.path("repo/library/alpine/blobs")
        let blob = try #require(
            try FileManager.default.contentsOfDirectory(atPath: blobsDirectory).first { $0.hasPrefix("sha256:") }
                .map { blobsDirectory + "/" + $0 })
        let unknown = blobsDirectory + "/" + Digester.digest(of: Array("new".utf8)).description
        let attempts: [(String, () -> SyscallOutcome)] = [
            ("open O_WRONLY", { syscallOutcome(closingDescriptor: true) { Int(Glibc.open(blob, O_WRONLY | O_CLOEXEC)) } }),
            ("open O_RDWR", { syscallOutcome(closingDescriptor: true) { Int(Glibc.open(blob, O_RDWR | O_CLOEXEC)) } }),
            ("open O_WRONLY|O_TRUNC", { syscallOutcome(closingDescriptor: true) { Int(Glibc.open(blob, O_WRONLY | O_TRUNC | O_CLOEXEC)) } }),
            ("open O_WRONLY|O_APPEND", { syscallOutcome(closingDescriptor: true) { Int(Glibc.open(blob, O_WRONLY | O_APPEND | O_CLOEXEC)) } }),
            ("create a digest name", { syscallOutcome(closingDescriptor: true) { Int(Glibc.open(unknown, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)) } }),
            ("create a temporary name", { syscallOutcome(closingDescriptor: true) { Int(Glibc.open(blobsDirectory + "/.tmp.x", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)) } }),
            ("creat in repo/", { syscallOutcome(closingDescriptor: true) { Int(Glibc.creat(mount.path("repo/file"), 0o644)) } }),
            ("mkdir repo/new", { syscallOutcome { Int(Glibc.mkdir(mount.path("repo/new"), 0o755)) } }),
            ("mkdir in blobs/", { syscallOutcome { Int(Glibc.mkdir(blobsDirectory + "/dir", 0o755)) } }),
            ("unlink a blob", { syscallOutcome { Int(Glibc.unlink(blob)) } }),
            ("rmdir blobs/", { syscallOutcome { Int(Glibc.rmdir(mount.path("repo/edge/@blobs/deep/blobs"))) } }),
            ("rename a blob", { syscallOutcome { Int(Glibc.rename(blob, blobsDirectory + "/renamed")) } }),
            ("rename a directory", { syscallOutcome { Int(Glibc.rename(mount.path("repo/team"), mount.path("repo/team2"))) } }),
            ("link", { syscallOutcome { Int(Glibc.link(blob, blobsDirectory + "/hardlink")) } }),
            ("symlink", { syscallOutcome { Int(Glibc.symlink("x", mount.path("repo/symlink"))) } }),
            ("chmod", { syscallOutcome { Int(Glibc.chmod(blob, 0o644)) } }),
            ("chown", { syscallOutcome { Int(Glibc.chown(blob, 1, 1)) } }),
            ("truncate", { syscallOutcome { Int(Glibc.truncate(blob, 0)) } }),
            ("utimes", { syscallOutcome { Int(Glibc.utimes(blob, nil)) } }),
            ("setxattr", { syscallOutcome { Int(Posix.setxattr(blob, "user.test", [120])) } }),
            ("removexattr", { syscallOutcome { Int(Posix.removexattr(blob, "user.blobfs.digest")) } }),
        ]
        for (what, attempt) in attempts {
            let outcome = attempt()
            #expect(outcome == .failed(.EROFS), "\(what) on a read-only mount \(outcome)")
        }
        // write(2) through the tools people use: cp into the mount fails the same way.
        let cp = try Command.run("cp", ["/etc/hostname", blobsDirectory + "/"])
        #expect(cp.status != 0 && cp.stderrText.contains("Read-only file system"), "\(cp)")
        // Nothing appeared.
        #expect(try FileManager.default.contentsOfDirectory(atPath: blobsDirectory).allSatisfy { $0.hasPrefix("sha256:") })
    }
}
