import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// The whole content of a file.
private func readFileBytes(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw TestSupportError("cannot read \(path)") }
    return Array(data)
}

/// Registries on S3 mounted by the `blobfs` executable: Debian's docker-registry writes into a
/// local moto bucket with its own s3 driver, and blobfs mounts, verifies, purges and restores
/// that store over `S3Driver` (issue 14). Each test works under a root directory of its own in
/// the process's one moto.
@Suite(.serialized) struct S3MountTests {
    /// A store's place in a bucket, and a workspace with the credentials file the mounts use.
    struct Place {
        let server: any S3TestServer
        let rootDirectory: String
        let workspace: Workspace

        /// A new place on `server` (the process's moto by default); with `rootDirectory`, the
        /// place of a store pushed before (`issueFixture`).
        init(_ name: String, server: (any S3TestServer)? = nil, rootDirectory: String? = nil) throws {
            self.server = try server ?? MotoServer.shared()
            self.rootDirectory = rootDirectory ?? "/s3mount-\(name)-\(UUID().uuidString.prefix(8))"
            workspace = try Workspace("s3-\(name)")
            try Posix.writeFile(credentialsFile, Array(self.server.credentialsFileText.utf8))
            chmod(credentialsFile, 0o600)
        }

        var credentialsFile: String { workspace.path("aws-credentials") }
        var store: String { "s3://\(server.bucket)\(rootDirectory)" }
        /// The options every command here needs: the endpoint and the credentials.
        /// With a blob cache of this test's own (not the host's default under /var/cache).
        var options: [String] { ["--s3-endpoint", server.endpoint, "--s3-credentials-file", credentialsFile, "--cache-dir", cacheDirectory] }
        var cacheDirectory: String { workspace.path("blob-cache") }

        var registryStorage: RegistryS3Storage { server.registryStorage(rootDirectory: rootDirectory) }

        /// The registry's own config.yml for this place (what `--config` reads).
        func writeRegistryConfig() throws -> String {
            let path = workspace.path("config.yml")
            try Posix.writeFile(path, Array((["version: 0.1", "storage:"] + registryStorage.yamlLines.map { "  " + $0 }).joined(separator: "\n").utf8))
            return path
        }

        /// The keys below this place's root, by a signed listing of every page.
        func keys(below relative: String) throws -> [String] {
            try server.keys(prefix: String(rootDirectory.dropFirst()) + "/" + relative)
        }

        /// The keys of the multipart uploads in progress below this place's root.
        func multipartUploads() throws -> [String] {
            try server.multipartUploads(prefix: String(rootDirectory.dropFirst()) + "/")
        }
    }

    /// What the registry stored: every linked blob, the manifest, what must be absent.
    struct Pushed {
        var blobs: [StoredBlob]
        var manifest: Digest
        var manifestBytes: [UInt8]
        /// Pushed to library/alpine, then DELETEd through the registry.
        var deleted: Digest
        /// The largest blob (read during the outage).
        var large: StoredBlob
    }

    /// Pushes, through the registry's s3 driver: blobs in nested repositories, a chunked upload
    /// (1 MiB PATCHes: the registry's short-part path), a cross-repository mount, a 12 MiB layer,
    /// an image manifest with its tag, and a blob deleted again.
    static func push(_ place: Place) throws -> Pushed {
        let server = try RegistryServer(s3: place.registryStorage)
        defer { server.stop() }
        let client = server.client
        var blobs: [StoredBlob] = []
        func push(_ repository: String, _ bytes: [UInt8], chunk: Int? = nil) throws -> StoredBlob {
            let blob = try pushBlob(client, repository, bytes, chunk: chunk, log: server.log.tail(2000))
            blobs.append(blob)
            return blob
        }
        let layer = try push("library/alpine", seededBytes(count: 100_000, seed: 1401))
        _ = try push("library/alpine", seededBytes(count: 1, seed: 1402))
        let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let configBlob = try push("library/alpine", config)
        _ = try push("team/app/web", seededBytes(count: (6 << 20) + 4321, seed: 1403), chunk: 1 << 20)
        _ = try push("team/app", seededBytes(count: 70_001, seed: 1404))
        let large = try push("big/layers", seededBytes(count: 12 << 20, seed: 1405))
        let mounted = try client.mount(repository: "team/mounted", from: "library/alpine", digest: "\(layer.digest)")
        guard mounted.status == 201 else { throw TestSupportError("cross-repository mount: \(mounted.status) \(mounted.text)") }
        blobs.append(StoredBlob(repository: "team/mounted", bytes: layer.bytes, digest: layer.digest))

        let doomed = try push("library/alpine", seededBytes(count: 5000, seed: 1406))
        blobs.removeLast()
        let deleted = try client.deleteBlob(repository: "library/alpine", digest: "\(doomed.digest)")
        guard deleted.status == 202 else { throw TestSupportError("blob DELETE: \(deleted.status) \(deleted.text)") }

        let manifestBytes = Array(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",\
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":\(config.count),"digest":"\(configBlob.digest)"},\
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":\(layer.bytes.count),"digest":"\(layer.digest)"}]}
            """.utf8)
        let put = try client.send(
            "PUT", url: "/v2/library/alpine/manifests/v1", headers: ["Content-Type": "application/vnd.docker.distribution.manifest.v2+json"],
            body: manifestBytes)
        guard put.status == 201 else { throw TestSupportError("manifest PUT: \(put.status) \(put.text)\n\(server.log.tail(2000))") }
        return Pushed(blobs: blobs, manifest: Digester.digest(of: manifestBytes), manifestBytes: manifestBytes, deleted: doomed.digest, large: large)
    }

    /// Issue 14's fixture, on moto and on radosgw (which checks every signature): every blob and
    /// both manifests read back through a read-only mount byte for byte (the sha256 of each file
    /// is its name); the deleted blob is ENOENT; the abandoned upload, whose data is still a
    /// multipart upload in the bucket, shows nowhere; `ls -l` shows each blob's size; the startup
    /// line names the bucket; `df` answers.
    @Test(arguments: S3ServerKind.allCases) func aRegistryOnS3ReadsBackThroughTheMount(server kind: S3ServerKind) async throws {
        let fixture = try await S3IssueFixture.shared(on: kind)
        let pushed = fixture.pushed
        let place = try Place("read-\(kind)", server: fixture.server, rootDirectory: fixture.rootDirectory)
        defer { place.workspace.remove() }
        #expect(Set(pushed.blobs.map(\.repository)).count >= 6, "\(Set(pushed.blobs.map(\.repository)).sorted())")
        #expect(pushed.blobs.contains { $0.bytes.count == 64 << 20 }, "a 64 MiB layer")
        #expect(try !place.multipartUploads().isEmpty, "the abandoned upload's data is a multipart upload in the bucket")
        try BlobfsMount.withMount(root: place.store, mountpoint: place.workspace.mountpoint, options: place.options) { mount in
            #expect(mount.entry.fileSystemType == "fuse.blobfs" && mount.entry.isReadOnly, "\(mount.entry)")
            // Exactly the linked blobs: nothing of the deleted blob or the abandoned upload.
            try expectTree(mount.path("repo"), holds: pushed.blobs, stripping: "repo/", "the S3 mount on \(kind)")
            let manifest = mount.path("repo/library/alpine/manifests/\(pushed.manifest)")
            expectSameBytes(try readFileBytes(manifest), pushed.manifestBytes, "the manifest")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: mount.path("repo/library/alpine/tags/v1")) == "../manifests/\(pushed.manifest)")
            let image = fixture.image
            expectSameBytes(try readFileBytes(mount.path("repo/\(image.repository)/manifests/\(fixture.imageManifest)")), image.manifest, "skopeo's manifest")
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: mount.path("repo/\(image.repository)/tags/\(image.tag)"))
                    == "../manifests/\(fixture.imageManifest)")
            switch Posix.stat(mount.path("repo/library/alpine/blobs/\(pushed.deleted)")) {
            case .success: Issue.record("a deleted blob is visible")
            case .failure(let error): #expect(error == .ENOENT, "\(error)")
            }
            switch Posix.stat(mount.path("repo/library/alpine/blobs/sha256:\(String(repeating: "0", count: 64))")) {
            case .success: Issue.record("an absent blob is visible")
            case .failure(let error): #expect(error == .ENOENT, "\(error)")
            }

            let listing = try Command.run("ls", ["-l", mount.path("repo/library/alpine/blobs")])
            #expect(listing.status == 0, "\(listing)")
            for blob in pushed.blobs where blob.repository == "library/alpine" {
                let line = listing.stdoutText.split(separator: "\n").first { $0.hasSuffix(" \(blob.digest)") }
                #expect(line?.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).first == "\(blob.bytes.count)", "ls -l: \(line ?? "no line for \(blob.digest)")")
            }
            let df = try Command.run("df", ["-B1", "--output=size,avail", mount.mountpoint])
            let sizes = df.stdoutText.split(separator: "\n").last?.split(separator: " ").compactMap { Int64($0) } ?? []
            #expect(df.status == 0 && sizes.count == 2 && sizes.allSatisfy { $0 > 0 }, "df of an S3 mount: \(df)")
            #expect(MountTable.waitUntil(timeout: 10) { mount.log.contains("mounted \(place.store) at") }, "\(mount.log)")
        }
    }

    /// A blob read through an S3 mount is fetched once into the local cache (verified as it
    /// arrives, published under its digest) and served from there; the cache outlives the mount.
    /// Its blobs are local files, so the kernel may read them through passthrough.
    @Test func blobsReadThroughAnS3MountAreCachedVerifiedAndServedLocally() throws {
        let place = try Place("cache")
        defer { place.workspace.remove() }
        let pushed = try Self.push(place)
        let cached = "\(place.cacheDirectory)/sha256/\(pushed.large.canonical.hex.prefix(2))/\(pushed.large.canonical.hex)"
        try BlobfsMount.withMount(root: place.store, mountpoint: place.workspace.mountpoint, options: place.options) { mount in
            #expect(!FileManager.default.fileExists(atPath: cached), "nothing cached before the first read")
            expectSameBytes(try readFileBytes(mount.path(pushed.large.relativePath)), pushed.large.bytes, "first read, fetched")
            expectSameBytes(try readFileBytes(cached), pushed.large.bytes, "the cache file holds the blob")
            expectSameBytes(try readFileBytes(mount.path(pushed.large.relativePath)), pushed.large.bytes, "second read")
            #expect(!mount.log.contains("the store is not a local filesystem"), "a cached store's blobs are local files: \(mount.log)")
        }
        expectSameBytes(try readFileBytes(cached), pushed.large.bytes, "the cache outlives the mount")
        var st = stat()
        #expect(stat(place.cacheDirectory, &st) == 0 && st.st_mode & 0o077 == 0, "the cache directory is private: \(String(st.st_mode, radix: 8))")
    }

    /// The fstab form: `mount -t fuse.blobfs s3://<bucket>/<root> <mnt> -o ro,s3_endpoint=…,
    /// s3_credentials_file=…` mounts the bucket and returns once it is mounted; `umount` ends it.
    @Test func mountTypeFuseBlobfsMountsABucket() throws {
        let place = try Place("fstab")
        defer { place.workspace.remove() }
        let pushed = try Self.push(place)
        let mountpoint = try Posix.realPath(place.workspace.mountpoint)
        var daemons: [Int32] = []
        defer {
            if MountTable.isMounted(mountpoint) { MountTable.forceUnmount(mountpoint) }
            for pid in Set(daemons + ProcessTable.blobfsProcesses(withArgument: mountpoint)) where ProcessTable.isAlive(pid) {
                kill(pid, SIGKILL)
            }
        }
        try HelperPath.withBlobfsInstalled {
            let options = "ro,s3_endpoint=\(place.server.endpoint),s3_credentials_file=\(place.credentialsFile),cache_dir=\(place.cacheDirectory)"
            let mounted = try Command.run("mount", ["-t", "fuse.blobfs", place.store, mountpoint, "-o", options], timeout: 60)
            #expect(mounted.status == 0 && MountTable.isMounted(mountpoint), "\(mounted)")
            daemons = ProcessTable.blobfsProcesses(withArgument: mountpoint)
            #expect(MountTable.entry(at: mountpoint)?.source == place.store, "\(String(describing: MountTable.entry(at: mountpoint)))")
            for blob in pushed.blobs.prefix(3) {
                #expect(try sha256Hex(ofFile: mountpoint + "/" + blob.relativePath) == blob.canonical.hex, "\(blob)")
            }
            let unmounted = try Command.run("umount", [mountpoint], timeout: 30)
            #expect(unmounted.status == 0, "\(unmounted)")
            #expect(MountTable.waitUntil(timeout: 10) { daemons.allSatisfy { !ProcessTable.isAlive($0) } }, "blobfs \(daemons) still running after umount")
        }
    }

    /// `blobfs verify s3://…` re-hashes the bucket's blobs, with credentials from the environment,
    /// and from a profile of ~/.aws/credentials.
    @Test func verifyChecksTheBucketWithCredentialsFromTheEnvironmentOrAProfile() throws {
        let place = try Place("verify")
        defer { place.workspace.remove() }
        let pushed = try Self.push(place)
        let blobfs = try BlobfsExecutable.path()
        let fromEnvironment = try Command.run(
            blobfs, ["verify", place.store, "--s3-endpoint", place.server.endpoint],
            environment: ["AWS_ACCESS_KEY_ID": place.server.accessKey, "AWS_SECRET_ACCESS_KEY": place.server.secretKey], timeout: 120)
        // The manifest is a blob too, and a DELETE removes only the blob's link, not its data.
        let distinct = Set(pushed.blobs.map(\.canonical)).count + 2
        #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
        #expect(fromEnvironment.stdoutText.contains("blobfs verify: \(place.store) is intact: \(distinct) blobs"), "\(fromEnvironment)")

        let home = try place.workspace.makeDirectory("home")
        try Posix.makeDirectory(home + "/.aws")
        try Posix.writeFile(
            home + "/.aws/credentials", Array("[ci]\naws_access_key_id=\(place.server.accessKey)\naws_secret_access_key=\(place.server.secretKey)\n".utf8))
        chmod(home + "/.aws/credentials", 0o600)
        let fromProfile = try Command.run(
            blobfs, ["verify", place.store, "--s3-endpoint", place.server.endpoint],
            environment: ["HOME": home, "AWS_PROFILE": "ci", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""], timeout: 120)
        #expect(fromProfile.status == 0 && fromProfile.stdoutText.contains("is intact"), "\(fromProfile)")
    }

    /// `purge-uploads` with the registry's config.yml removes an abandoned upload: its keys and
    /// the multipart upload that holds its data.
    @Test func purgeUploadsRemovesAnAbandonedUploadAndItsMultipartUpload() throws {
        let place = try Place("purge")
        defer { place.workspace.remove() }
        _ = try Self.push(place)
        let server = try RegistryServer(s3: place.registryStorage)
        let started = try server.client.send("POST", url: "/v2/library/alpine/blobs/uploads/")
        let location = started.header("Location") ?? ""
        let path = location.hasPrefix("http") ? String(location.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" }) : location
        let patched = try server.client.send(
            "PATCH", url: path, headers: ["Content-Type": "application/octet-stream"], body: seededBytes(count: 200_000, seed: 1407))
        server.stop()
        #expect(started.status == 202 && patched.status == 202, "start \(started.status), PATCH \(patched.status) \(patched.text)")
        #expect(try !place.keys(below: "docker/registry/v2/repositories/library/alpine/_uploads/").isEmpty, "the abandoned upload's keys")
        #expect(try !place.multipartUploads().isEmpty, "the registry keeps an unfinished upload's data as a multipart upload")

        let config = try place.writeRegistryConfig()
        let purge = try Command.run(
            try BlobfsExecutable.path(), ["purge-uploads", place.store, "--older-than", "0s", "--s3-endpoint", place.server.endpoint],
            environment: ["AWS_ACCESS_KEY_ID": place.server.accessKey, "AWS_SECRET_ACCESS_KEY": place.server.secretKey], timeout: 120)
        #expect(purge.status == 0 && purge.stdoutText.contains("purged 1 upload"), "\(purge)")
        #expect(try place.keys(below: "docker/registry/v2/repositories/library/alpine/_uploads/").isEmpty)
        #expect(try place.multipartUploads().isEmpty, "the multipart upload was aborted: \(purge)")

        // The same store mounts with the registry's own config.yml: its keys and endpoint.
        try BlobfsMount.withMount(root: place.store, mountpoint: place.workspace.mountpoint, options: ["--config", config, "--cache-dir", place.cacheDirectory]) { mount in
            // The startup line is written once the kernel's INIT exchange is done, which can be
            // just after the mount appears.
            #expect(MountTable.waitUntil(timeout: 10) { mount.log.contains("mounted \(place.store) at") }, "\(mount.log)")
            let names = try FileManager.default.contentsOfDirectory(atPath: mount.path("repo/library/alpine/blobs"))
            #expect(names.count == 3, "\(names)")
        }
    }

    /// Each thing that can be wrong stops the mount before it starts, with one line saying which.
    @Test func thePreflightSaysWhatIsWrongInOneLine() throws {
        let place = try Place("preflight")
        defer { place.workspace.remove() }
        _ = try Self.push(place)
        let blobfs = try BlobfsExecutable.path()
        let closedPort = try freeLoopbackPort()
        let credentials = ["--s3-credentials-file", place.credentialsFile]
        let bucket = place.server.bucket
        let cases: [(arguments: [String], says: String)] = [
            (["s3://no-such-bucket\(place.rootDirectory)", "--s3-endpoint", place.server.endpoint] + credentials, "there is no bucket no-such-bucket"),
            ([place.store, "--s3-endpoint", "http://127.0.0.1:\(closedPort)"] + credentials, "cannot reach the S3 endpoint http://127.0.0.1:\(closedPort)"),
            (["s3://\(bucket)/nothing-here-\(UUID().uuidString)"] + place.options, "is not a registry store"),
            (["s3://\(bucket)\(place.rootDirectory)/docker"] + place.options, "is not a registry store"),
        ]
        for (arguments, says) in cases {
            let started = Date()
            let result = try Command.run(blobfs, ["mount", arguments[0], place.workspace.mountpoint] + arguments.dropFirst(), timeout: 60)
            let lines = result.stderrText.split(separator: "\n")
            #expect(result.status == 1 && lines.count == 1 && lines.first?.hasPrefix("blobfs: ") == true && result.stderrText.contains(says), "\(arguments): \(result)")
            #expect(Date().timeIntervalSince(started) < 20, "\(arguments): the preflight took \(Date().timeIntervalSince(started)) s")
            #expect(!MountTable.isMounted(place.workspace.mountpoint))
        }

        // Wrong credentials need a server that checks signatures: a moto of its own.
        let checking = try MotoServer(bucket: "checked")
        defer { checking.stop() }
        _ = try checking.enforceSignatures()
        let refused = try Command.run(
            blobfs, ["mount", "s3://checked/registry", place.workspace.mountpoint, "--s3-endpoint", checking.endpoint] + credentials, timeout: 60)
        #expect(
            refused.status == 1 && refused.stderrText.split(separator: "\n").count == 1
                && refused.stderrText.contains("refused the credentials from the [default] profile of \(place.credentialsFile)"),
            "\(refused)")
        #expect(!MountTable.isMounted(place.workspace.mountpoint))
    }

    /// S3 goes away: a blob already fetched into the local cache keeps being read from it, while
    /// one that must still come from S3 fails with EIO within the client's deadline, never a hang;
    /// when S3 is back, the same mount serves that blob too, byte for byte.
    @Test func anS3OutageIsEIOForWhatMustBeFetchedAndTheMountRecovers() throws {
        let place = try Place("outage")
        defer { place.workspace.remove() }
        let pushed = try Self.push(place)
        let proxy = try CuttableProxy(targetPort: place.server.port)
        defer { proxy.stop() }
        let options = ["--s3-endpoint", proxy.endpoint, "--s3-credentials-file", place.credentialsFile, "--cache-dir", place.cacheDirectory]
        let later = try #require(pushed.blobs.first { $0.repository == "team/app/web" }, "the 6 MiB blob")
        try BlobfsMount.withMount(root: place.store, mountpoint: place.workspace.mountpoint, options: options) { mount in
            let path = mount.path(pushed.large.relativePath)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0, "open: \(String(cString: strerror(errno)))\n\(mount.log.tail(2000))")
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let first = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4096, 0) }
            #expect(first == 4096, "the first read: \(first) \(String(cString: strerror(errno)))")

            try proxy.cut()
            // The open blob is in the cache: its reads go on during the outage.
            let middle = off_t(5 << 20)
            let during = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, middle) }
            #expect(during == buffer.count, "a read of a cached blob during the outage: \(during) \(String(cString: strerror(errno)))")
            expectSameBytes(Array(buffer[..<max(during, 0)]), Array(pushed.large.bytes[(5 << 20)..<((5 << 20) + max(during, 0))]), "cached bytes during the outage")
            // A blob that must come from S3 (its link, then its data): EIO within the deadline.
            let started = Date()
            let failed = try Command.run("cat", [mount.path(later.relativePath)], timeout: 120)
            #expect(failed.status != 0 && failed.stdout.isEmpty, "cat during the outage: \(failed)")
            #expect(failed.stderrText.contains("Input/output error"), "EIO: \(failed.stderrText)")
            #expect(Date().timeIntervalSince(started) < 90, "EIO within the deadline, not \(Date().timeIntervalSince(started)) s")

            try proxy.restore()
            #expect(try sha256Hex(ofFile: mount.path(later.relativePath)) == later.canonical.hex, "the blob after the outage\n\(mount.log.tail(2000))")
            #expect(try sha256Hex(ofFile: path) == pushed.large.canonical.hex, "the cached blob after the outage")
        }
    }

    /// Issue 14's fixture, on moto and on radosgw: a backup taken through an S3 mount, restored
    /// through a read-write mount of an empty second prefix, is served by a registry on that
    /// prefix: every blob byte for byte, and both images to skopeo (`copy --all`, digests equal).
    @Test(arguments: S3ServerKind.allCases) func aRestoreIntoASecondPrefixIsServedByARegistryOnIt(server kind: S3ServerKind) async throws {
        let fixture = try await S3IssueFixture.shared(on: kind)
        let pushed = fixture.pushed
        let place = try Place("restore-from-\(kind)", server: fixture.server, rootDirectory: fixture.rootDirectory)
        defer { place.workspace.remove() }
        let backup = try place.workspace.makeDirectory("backup")
        try BlobfsMount.withMount(root: place.store, mountpoint: place.workspace.mountpoint, options: place.options) { mount in
            let copy = try Command.run("rsync", ["-aH", mount.path("repo") + "/", backup + "/"], timeout: 300)
            #expect(copy.status == 0, "backup: \(copy)")
        }
        let target = try Place("restore-to-\(kind)", server: place.server)
        defer { target.workspace.remove() }
        try BlobfsMount.withMount(root: target.store, mountpoint: target.workspace.mountpoint, options: target.options + ["--read-write"]) { mount in
            #expect(mount.log.contains("is empty: a new store to restore into"), "\(mount.log)")
            let copy = try Command.run("rsync", ["-aH", backup + "/", mount.path("repo") + "/"], timeout: 300)
            #expect(copy.status == 0, "restore: \(copy)\n\(mount.log.tail(2000))")
        }
        #expect(try target.multipartUploads().isEmpty, "no upload left behind")
        let server = try RegistryServer(s3: target.registryStorage)
        defer { server.stop() }
        for blob in pushed.blobs {
            let got = try server.client.get(repository: blob.repository, digest: "\(blob.digest)")
            #expect(got.status == 200, "\(blob): \(got.status)")
            expectSameBytes(got.body, blob.bytes, "\(blob) served by the registry on the restored prefix")
        }
        let deleted = try server.client.head(repository: "library/alpine", digest: "\(pushed.deleted)")
        #expect(deleted.status == 404, "the deleted blob stays deleted: \(deleted.status)")
        let images = [
            ("library/alpine", "v1", pushed.manifest, pushed.manifestBytes),
            (fixture.image.repository, fixture.image.tag, fixture.imageManifest, fixture.image.manifest),
        ]
        for (repository, tag, digest, manifest) in images {
            let pulled = place.workspace.path("pulled-\(repository.replacingOccurrences(of: "/", with: "-"))")
            let pull = try Command.run(
                "skopeo", ["--insecure-policy", "copy", "--all", "--src-tls-verify=false", "docker://127.0.0.1:\(server.port)/\(repository):\(tag)", "dir:" + pulled],
                timeout: 300)
            #expect(pull.status == 0, "skopeo copy --all of \(repository):\(tag) from the restored prefix: \(pull)\n\(server.log.tail(2000))")
            expectSameBytes(try readFileBytes(pulled + "/manifest.json"), manifest, "the manifest of \(repository):\(tag) skopeo pulled")
            #expect(Digester.digest(of: try readFileBytes(pulled + "/manifest.json")) == digest)
            // skopeo checked each blob against its digest as it copied; the files it wrote are those blobs.
            for referenced in try S3IssueFixture.referencedDigests(manifest) {
                #expect(try sha256Hex(ofFile: pulled + "/" + referenced.hex) == referenced.hex, "\(repository): \(referenced)")
            }
        }
    }
}
