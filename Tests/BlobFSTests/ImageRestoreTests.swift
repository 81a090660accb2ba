import Distribution
import Foundation
import Glibc
import Storage
import StorageDriver
import TestSupport
import Testing

/// Issue 12's central promise, for the copy tools that preserve symbolic links: a backup of a
/// registry's tree taken through a read-only mount, restored into an empty directory through a
/// read-write mount, is a store the real registry serves the same image from — its manifest by
/// tag and by digest, and every blob the manifest names.
@Suite(.serialized) struct ImageRestoreTests {
    @Test(arguments: ["rsync", "cp", "tar"])
    func aBackupThroughTheMountRestoresAPullableImage(tool: String) throws {
        let workspace = try Workspace("restore-\(tool)")
        defer { workspace.remove() }
        let store = try RegistryStoreMountTests.pushStore(root: workspace.root)
        let backup = try workspace.makeDirectory("backup")
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let copy = try Command.run("rsync", ["-a", mount.path("repo") + "/", backup + "/"], timeout: 120)
            #expect(copy.status == 0 && copy.stderr.isEmpty, "backup: \(copy)")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: backup + "/library/alpine/tags/v1") == "../manifests/\(store.manifest)")

        // Restore into an empty directory: a new store, written only through the mount.
        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy = try Self.restore(with: tool, from: backup, into: mount.path("repo"), workspace: workspace)
            #expect(copy.status == 0, "restore with \(tool): \(copy)\n\(mount.log.tail(3000))")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: mount.path("repo/library/alpine/tags/v1"))
                == "../manifests/\(store.manifest)")
        }

        // blobfs verify --images finds every tagged image complete.
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", "--images", restored], timeout: 120)
        #expect(verify.status == 0 && verify.stdoutText.contains("tagged image"), "\(verify)")
        #expect(verify.stdoutText.contains("all complete"), "\(verify)")

        // The real registry serves the restored image.
        try RegistryServer.withServer(root: restored) { server in
            let accept = ["Accept": "application/vnd.docker.distribution.manifest.v2+json"]
            let byTag = try server.client.send("GET", url: "/v2/library/alpine/manifests/v1", headers: accept)
            #expect(byTag.status == 200, "GET by tag: \(byTag.status) \(byTag.text)\n\(server.log.tail(2000))")
            #expect(byTag.header("Docker-Content-Digest") == "\(store.manifest)")
            #expect(try sha256Hex(of: byTag.body) == store.manifest.hex)
            let byDigest = try server.client.send("GET", url: "/v2/library/alpine/manifests/\(store.manifest)", headers: accept)
            #expect(byDigest.status == 200 && byDigest.body == byTag.body, "GET by digest: \(byDigest.status)")
            // Every blob the manifest names is served, with its bytes.
            let manifest = try JSONSerialization.jsonObject(with: Data(byTag.body)) as? [String: Any]
            let config = (manifest?["config"] as? [String: Any])?["digest"] as? String
            let layers = ((manifest?["layers"] as? [[String: Any]]) ?? []).compactMap { $0["digest"] as? String }
            #expect(config != nil && layers.count == 1, "\(String(decoding: byTag.body, as: UTF8.self))")
            for digest in [config].compactMap({ $0 }) + layers {
                let blob = try server.client.get(repository: "library/alpine", digest: digest)
                let hex = try sha256Hex(of: blob.body)
                #expect(blob.status == 200 && "sha256:" + hex == digest, "GET blob \(digest): \(blob.status)")
            }
            let tags = try server.client.send("GET", url: "/v2/library/alpine/tags/list")
            #expect(tags.status == 200 && tags.text.contains("\"v1\""), "tags/list: \(tags.text)")
            // The registry's own client path: skopeo pulls the tag and checks every digest.
            let bytes = Dictionary(store.blobs.filter { $0.repository == "library/alpine" }.map { ($0.digest, $0.bytes) }) { first, _ in first }
            try Self.expectSkopeoPulls(server, "library/alpine", "v1", store.manifest, into: workspace.path("pulled"), bytes: bytes)
        }
    }

    /// rsync updates a link that changed as a temporary link renamed into place, and a new
    /// manifest as a temporary file renamed into place: a second restore moves the tag.
    @Test func aSecondRsyncMovesATagThatMoved() throws {
        let workspace = try Workspace("restore-update")
        defer { workspace.remove() }
        let registry = Registry(driver: try FilesystemDriver(root: workspace.root))
        let repository = try registry.repository("app")
        let config = try repository.blobs.put(mediaType: "application/vnd.oci.image.config.v1+json", Array("{}".utf8)).digest
        func manifest(_ annotation: String) -> [UInt8] {
            Array(("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
                + "\"application/vnd.oci.image.config.v1+json\",\"size\":2,\"digest\":\"\(config)\"},\"layers\":[],"
                + "\"annotations\":{\"v\":\"\(annotation)\"}}").utf8)
        }
        let first = try repository.manifests.put(manifest("1"), as: Digester.digest(of: manifest("1"))).digest
        try repository.tags.tag(try Tag("v1"), to: first)

        let backup = try Self.backUp(workspace)
        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy = try Command.run("rsync", ["-a", backup + "/", mount.path("repo") + "/"], timeout: 60)
            #expect(copy.status == 0, "\(copy)\n\(mount.log.tail(2000))")
        }
        // Meanwhile the tag moved to a new manifest.
        let second = Digester.digest(of: manifest("2"))
        try Posix.writeFile(backup + "/app/manifests/\(second)", manifest("2"))
        let relink = try Command.run("ln", ["-sfn", "../manifests/\(second)", backup + "/app/tags/v1"])
        #expect(relink.status == 0, "\(relink)")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy = try Command.run("rsync", ["-a", backup + "/", mount.path("repo") + "/"], timeout: 60)
            #expect(copy.status == 0, "\(copy)\n\(mount.log.tail(2000))")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: mount.path("repo/app/tags/v1")) == "../manifests/\(second)")
        }
        #expect(try Registry(driver: try FilesystemDriver(root: restored)).repository("app").tags.current(try Tag("v1")) == second)
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", "--images", restored], timeout: 60)
        #expect(verify.status == 0 && verify.stdoutText.contains("all complete"), "\(verify)")
    }

    /// A layer three repositories share is one file in a backup made with hard links kept, and
    /// one data file, linked in all three, after a restore that keeps them too.
    @Test(arguments: ["rsync", "tar"])
    func aSharedBlobIsStoredOnceInABackupAndInItsRestore(tool: String) throws {
        let workspace = try Workspace("restore-shared-\(tool)")
        defer { workspace.remove() }
        let layer = seededBytes(count: 1 << 20, seed: 12_900)
        let stored = try writeStore(root: workspace.root, [("a/app", layer), ("b/app", layer), ("c/app", layer)])
        let digest = stored[0].digest
        let backup = try workspace.makeDirectory("backup")
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let copy =
                tool == "rsync"
                ? try Command.run("rsync", ["-aH", mount.path("repo") + "/", backup + "/"], timeout: 60)
                : try Command.run("bash", ["-c", "tar -c -C \"$1\" . | tar -x -C \"$2\"", "bash", mount.path("repo"), backup], timeout: 60)
            #expect(copy.status == 0, "backup: \(copy)")
        }
        let copies = try ["a", "b", "c"].map { try Posix.stat("\(backup)/\($0)/app/blobs/\(digest)").get() }
        #expect(Set(copies.map(\.st_ino)).count == 1 && copies.allSatisfy { $0.st_nlink == 3 }, "one file with three names in the backup")
        let size = try Command.run("du", ["-sb", backup])
        let bytes = Int(size.stdoutText.split(separator: "\t").first ?? "") ?? Int.max
        #expect(bytes < 2 << 20, "du counts the shared layer once: \(size.stdoutText)")

        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy =
                tool == "rsync"
                ? try Command.run("rsync", ["-aH", backup + "/", mount.path("repo") + "/"], timeout: 60)
                : try Command.run("bash", ["-c", "tar -c -C \"$1\" . | tar -x -C \"$2\"", "bash", backup, mount.path("repo")], timeout: 60)
            #expect(copy.status == 0, "restore: \(copy)\n\(mount.log.tail(2000))")
        }
        let registry = Registry(driver: try FilesystemDriver(root: restored))
        for name in ["a/app", "b/app", "c/app"] {
            #expect(try registry.repository(name).blobs.linkTarget(digest) == digest, "\(name) links the layer")
        }
        #expect(try registry.blobStore.get(digest) == layer)
    }

    /// `rsync -aH` (or `flags`) of the store's `repo/` through a read-only mount into a new
    /// `backup` directory.
    static func backUp(_ workspace: Workspace, root: String? = nil, options: [String] = [], flags: String = "-aH") throws -> String {
        let backup = try workspace.makeDirectory("backup")
        try BlobfsMount.withMount(root: root ?? workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let copy = try Command.run("rsync", [flags, mount.path("repo") + "/", backup + "/"], timeout: 120)
            #expect(copy.status == 0, "backup: \(copy)")
        }
        return backup
    }

    /// Copies a backup into a read-write mount's `repo/` with `tool`, as a user restores.
    static func restore(with tool: String, from backup: String, into repo: String, workspace: Workspace) throws -> CommandResult {
        switch tool {
        case "rsync": return try Command.run("rsync", ["-aH", backup + "/", repo + "/"], timeout: 120)
        case "cp": return try Command.run("cp", ["-a", backup + "/.", repo], timeout: 120)
        default:
            // GNU tar writes an empty placeholder for each link first and the link last.
            let archive = workspace.path("backup-\(UInt64.random(in: 0..<UInt64.max)).tar")
            let pack = try Command.run("tar", ["-c", "-f", archive, "-C", backup, "."], timeout: 120)
            guard pack.status == 0 else { return pack }
            // --skip-old-files: a sha512 name commits its sha256 name too (as the registry links
            // both), which the archive then holds again.
            return try Command.run("tar", ["-x", "--skip-old-files", "-f", archive, "-C", repo], timeout: 120)
        }
    }

    /// Builds an image with umoci (one layer holding `hello.txt`) and pushes it with skopeo to the
    /// real registry on the workspace's store as `team/app:v1`; returns the sha256 hex of its
    /// manifest as the registry serves it.
    static func buildAndPushImage(_ workspace: Workspace, hello: [UInt8]) throws -> String {
        let layout = workspace.path("layout")
        let bundle = workspace.path("bundle")
        for arguments in [["init", "--layout", layout], ["new", "--image", layout + ":v1"], ["unpack", "--rootless", "--image", layout + ":v1", bundle]] {
            let step = try Command.run("umoci", arguments, timeout: 60)
            try #require(step.status == 0, "umoci \(arguments): \(step)")
        }
        try Posix.writeFile(bundle + "/rootfs/hello.txt", hello)
        let repack = try Command.run("umoci", ["repack", "--image", layout + ":v1", bundle], timeout: 60)
        try #require(repack.status == 0, "umoci repack: \(repack)")
        return try RegistryServer.withServer(root: workspace.root) { server in
            let reference = "docker://127.0.0.1:\(server.port)/team/app:v1"
            let push = try skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):v1", reference])
            try #require(push.status == 0, "skopeo copy to the registry: \(push)")
            let raw = try skopeo(["inspect", "--raw", "--tls-verify=false", reference])
            try #require(raw.status == 0, "\(raw)")
            return try sha256Hex(of: Array(raw.stdoutText.utf8))
        }
    }

    static func skopeo(_ arguments: [String]) throws -> CommandResult {
        try Command.run("skopeo", ["--insecure-policy"] + arguments, timeout: 120)
    }

    /// An image as a user builds it (umoci) and pushes it (skopeo) comes back from a backup
    /// through the mount pullable by skopeo, which checks every digest, with the same manifest.
    @Test func anImageBuiltWithUmociAndPushedWithSkopeoIsPulledBackAfterARestore() throws {
        let workspace = try Workspace("restore-skopeo")
        defer { workspace.remove() }
        let original = try Self.buildAndPushImage(workspace, hello: seededBytes(count: 300_000, seed: 12_950))
        func skopeo(_ arguments: [String]) throws -> CommandResult { try Self.skopeo(arguments) }

        let backup = try Self.backUp(workspace)
        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy = try Command.run("rsync", ["-aH", backup + "/", mount.path("repo") + "/"], timeout: 60)
            #expect(copy.status == 0, "restore: \(copy)\n\(mount.log.tail(2000))")
        }
        try RegistryServer.withServer(root: restored) { server in
            let reference = "docker://127.0.0.1:\(server.port)/team/app:v1"
            let pull = try skopeo(["copy", "--src-tls-verify=false", reference, "dir:" + workspace.path("pulled")])
            #expect(pull.status == 0, "skopeo copy from the restored registry: \(pull)\n\(server.log.tail(2000))")
            let raw = try skopeo(["inspect", "--raw", "--tls-verify=false", reference])
            let pulled = try sha256Hex(of: Array(raw.stdoutText.utf8))
            #expect(raw.status == 0 && pulled == original, "the same manifest: \(raw)")
        }
    }

    /// With --oci, each repository is also an OCI image layout that skopeo copies (the same
    /// manifest digest) and umoci unpacks, from a read-only mount.
    @Test func theOCIViewIsALayoutSkopeoAndUmociRead() throws {
        let workspace = try Workspace("oci-view")
        defer { workspace.remove() }
        let hello = seededBytes(count: 100_000, seed: 12_960)
        let original = try Self.buildAndPushImage(workspace, hello: hello)
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--oci"]) { mount in
            let layout = mount.path("oci/team/app")
            let listed = try FileManager.default.contentsOfDirectory(atPath: layout).sorted()
            #expect(listed == ["blobs", "index.json", "oci-layout"], "\(listed)")
            #expect(try Posix.readFile(layout + "/oci-layout") == Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
            let index = String(decoding: try Posix.readFile(layout + "/index.json"), as: UTF8.self)
            #expect(index.contains("sha256:\(original)") && index.contains(#""org.opencontainers.image.ref.name":"v1""#), "\(index)")
            let pulled = workspace.path("pulled")
            let copy = try Self.skopeo(["copy", "oci:\(layout):v1", "dir:" + pulled])
            #expect(copy.status == 0, "skopeo copy from the view: \(copy)\n\(mount.log.tail(2000))")
            let manifest = try sha256Hex(ofFile: pulled + "/manifest.json")
            #expect(manifest == original, "skopeo kept the manifest byte for byte")
            let unpack = try Command.run("umoci", ["unpack", "--rootless", "--image", layout + ":v1", workspace.path("unpacked")], timeout: 60)
            #expect(unpack.status == 0, "umoci unpack from the view: \(unpack)")
            #expect(try Posix.readFile(workspace.path("unpacked") + "/rootfs/hello.txt") == hello)
        }
    }

    /// What `pushIndexes` pushed: every reference the registry serves (tags and untagged
    /// children) with its digest and media type, the manifest deleted there, and the bytes of
    /// every manifest and blob by digest.
    struct PushedIndexes {
        var served: [(reference: String, digest: Digest, mediaType: String)] = []
        var deleted: Digest?
        var bytes: [Digest: [UInt8]] = [:]

        /// The tags, with the digests of the manifests below each (children, config, layer).
        var tags: [(tag: String, digest: Digest)] { served.filter { !$0.reference.hasPrefix("sha256:") }.map { ($0.reference, $0.digest) } }
    }

    /// Pushes to the real registry on the workspace's store, in `multi/arch`: an OCI index
    /// (`latest`) over two untagged OCI children, a Docker manifest list (`list`) over an untagged
    /// Docker child, and a manifest deleted after its push (`old`).
    static func pushIndexes(_ workspace: Workspace) throws -> PushedIndexes {
        func json(_ text: String) -> [UInt8] { Array(text.utf8) }
        var pushed = PushedIndexes()
        try RegistryServer.withServer(root: workspace.root) { server in
            let client = server.client
            let config = json(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#)
            let layer = try gzipLayer(workspace)
            for blob in [config, layer] {
                let push = try client.pushMonolithic(repository: "multi/arch", bytes: blob, digest: "\(Digester.digest(of: blob))")
                try #require(push.status == 201, "\(push.status) \(push.text)")
                pushed.bytes[Digester.digest(of: blob)] = blob
            }
            func put(_ bytes: [UInt8], _ mediaType: String, as reference: String) throws -> Digest {
                let response = try client.send("PUT", url: "/v2/multi/arch/manifests/\(reference)", headers: ["Content-Type": mediaType], body: bytes)
                try #require(response.status == 201, "PUT \(reference): \(response.status) \(response.text)")
                pushed.bytes[Digester.digest(of: bytes)] = bytes
                return Digester.digest(of: bytes)
            }
            func image(_ os: String, _ type: String, _ configType: String, _ layerType: String) -> [UInt8] {
                json(#"{"schemaVersion":2,"mediaType":"\#(type)","config":{"mediaType":"\#(configType)","size":\#(config.count),"digest":"\#(Digester.digest(of: config))"},"layers":[{"mediaType":"\#(layerType)","size":\#(layer.count),"digest":"\#(Digester.digest(of: layer))"}],"annotations":{"os":"\#(os)"}}"#)
            }
            let oci = "application/vnd.oci.image.manifest.v1+json"
            let docker = "application/vnd.docker.distribution.manifest.v2+json"
            let children = try ["linux", "windows"].map { os in
                let bytes = image(os, oci, "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip")
                return (bytes, try put(bytes, oci, as: "\(Digester.digest(of: bytes))"))
            }
            let indexType = "application/vnd.oci.image.index.v1+json"
            let index = json(#"{"schemaVersion":2,"mediaType":"\#(indexType)","manifests":["# + children.map { #"{"mediaType":"\#(oci)","size":\#($0.0.count),"digest":"\#($0.1)","platform":{"architecture":"amd64","os":"\#($0.1 == children[0].1 ? "linux" : "windows")"}}"# }.joined(separator: ",") + "]}")
            pushed.served.append(("latest", try put(index, indexType, as: "latest"), indexType))
            let dockerChild = image("docker", docker, "application/vnd.docker.container.image.v1+json", "application/vnd.docker.image.rootfs.diff.tar.gzip")
            let dockerChildDigest = try put(dockerChild, docker, as: "\(Digester.digest(of: dockerChild))")
            let listType = "application/vnd.docker.distribution.manifest.list.v2+json"
            let list = json(#"{"schemaVersion":2,"mediaType":"\#(listType)","manifests":[{"mediaType":"\#(docker)","size":\#(dockerChild.count),"digest":"\#(dockerChildDigest)","platform":{"architecture":"amd64","os":"linux"}}]}"#)
            pushed.served.append(("list", try put(list, listType, as: "list"), listType))
            for (_, digest) in children { pushed.served.append(("\(digest)", digest, oci)) }
            pushed.served.append(("\(dockerChildDigest)", dockerChildDigest, docker))
            let gone = image("gone", oci, "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip")
            let deleted = try put(gone, oci, as: "old")
            pushed.bytes[deleted] = nil
            pushed.deleted = deleted
            let delete = try client.send("DELETE", url: "/v2/multi/arch/manifests/\(deleted)")
            try #require(delete.status == 202, "DELETE: \(delete.status) \(delete.text)")
        }
        return pushed
    }

    /// A gzip-compressed layer, as images hold them: skopeo copying into an `oci:` layout
    /// compresses a layer that is not compressed yet, which would change every digest above it.
    static func gzipLayer(_ workspace: Workspace) throws -> [UInt8] {
        let plain = workspace.path("layer")
        try Posix.writeFile(plain, seededBytes(count: 5000, seed: 12_970))
        let gzip = try Command.run("gzip", ["-n", "-c"], stdinPath: plain)
        try #require(gzip.status == 0 && !gzip.stdout.isEmpty, "\(gzip)")
        return gzip.stdout
    }

    /// The registry on a restored store serves every reference `pushIndexes` pushed with its
    /// digest and media type, not the deleted manifest, and skopeo pulls every tag.
    static func expectServed(_ pushed: PushedIndexes, restored: String, workspace: Workspace) throws {
        try RegistryServer.withServer(root: restored) { server in
            for (reference, digest, mediaType) in pushed.served {
                let get = try server.client.send("GET", url: "/v2/multi/arch/manifests/\(reference)", headers: ["Accept": mediaType])
                #expect(get.status == 200 && get.header("Docker-Content-Digest") == "\(digest)", "GET \(reference): \(get.status)")
                #expect(get.header("Content-Type") == mediaType, "GET \(reference): \(get.header("Content-Type") ?? "no type")")
            }
            let gone = try server.client.send("GET", url: "/v2/multi/arch/manifests/\(pushed.deleted!)")
            #expect(gone.status == 404, "the deleted manifest stays deleted: \(gone.status)")
            for (tag, digest) in pushed.tags {
                try expectSkopeoPulls(server, "multi/arch", tag, digest, into: workspace.path("pulled-\(tag)"), bytes: pushed.bytes)
            }
        }
    }

    /// `skopeo copy --all` of `<repository>:<tag>` from the registry into a `dir:` (which keeps
    /// every media type as it is; `oci:` would convert Docker types and change the digests):
    /// skopeo verifies every blob and manifest it pulls against its digest, and the manifest it
    /// got must be `digest`; each child of an index, and each blob, must arrive byte for byte.
    static func expectSkopeoPulls(
        _ server: RegistryServer, _ repository: String, _ tag: String, _ digest: Digest, into directory: String, bytes: [Digest: [UInt8]] = [:]
    ) throws {
        let reference = "docker://127.0.0.1:\(server.port)/\(repository):\(tag)"
        let pull = try skopeo(["copy", "--all", "--src-tls-verify=false", reference, "dir:" + directory])
        #expect(pull.status == 0, "skopeo copy --all \(reference): \(pull)\n\(server.log.tail(2000))")
        let raw = try skopeo(["inspect", "--raw", "--tls-verify=false", reference])
        let served = try sha256Hex(of: Array(raw.stdoutText.utf8))
        #expect(raw.status == 0 && served == digest.hex, "inspect --raw \(reference): \(raw)")
        #expect(try sha256Hex(ofFile: directory + "/manifest.json") == digest.hex, "\(reference) pulled as the original manifest")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        for (expected, content) in bytes where files.contains(expected.hex) || files.contains(expected.hex + ".manifest.json") {
            let path = directory + "/" + (files.contains(expected.hex) ? expected.hex : expected.hex + ".manifest.json")
            #expect(try Posix.readFile(path) == content, "\(reference): \(expected) byte for byte")
        }
    }

    /// An OCI index over two untagged children and a Docker manifest list, pushed to the real
    /// registry, and a manifest deleted there: the backup and restore bring back every tag and
    /// every child, the deleted manifest stays gone, and the registry serves them all again.
    @Test(arguments: ["rsync", "cp", "tar"])
    func indexesListsAndTheirUntaggedChildrenComeBack(tool: String) throws {
        let workspace = try Workspace("restore-index-\(tool)")
        defer { workspace.remove() }
        let pushed = try Self.pushIndexes(workspace)
        let backup = try Self.backUp(workspace)
        #expect(!FileManager.default.fileExists(atPath: "\(backup)/multi/arch/manifests/\(pushed.deleted!)"), "a deleted manifest is no revision")
        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy = try Self.restore(with: tool, from: backup, into: mount.path("repo"), workspace: workspace)
            #expect(copy.status == 0, "restore with \(tool): \(copy)\n\(mount.log.tail(2000))")
        }
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", "--images", restored], timeout: 60)
        #expect(verify.status == 0 && verify.stdoutText.contains("2 tagged images checked, all complete"), "\(verify)")
        try Self.expectServed(pushed, restored: restored, workspace: workspace)
    }

    /// Backups whose tags were dereferenced (`rsync -L`, `cp -L`, `tar -h`: each tag a file
    /// holding its manifest's bytes) restore every tag: the files become tags again, through
    /// rsync's temporary name and rename, through cp's create and close, and through the hard link
    /// to the manifest that `tar -h` archives a tag as.
    @Test(arguments: ["rsync -L", "cp -L", "tar -h"])
    func dereferencedBackupsRestoreEveryTag(tool: String) throws {
        let workspace = try Workspace("restore-dereferenced-\(tool.prefix(3))")
        defer { workspace.remove() }
        let pushed = try Self.pushIndexes(workspace)
        let backup = try workspace.makeDirectory("backup")
        let archive = workspace.path("backup.tar")
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let copy =
                switch tool {
                case "rsync -L": try Command.run("rsync", ["-aL", mount.path("repo") + "/", backup + "/"], timeout: 60)
                case "cp -L": try Command.run("cp", ["-rL", mount.path("repo") + "/.", backup], timeout: 60)
                default: try Command.run("tar", ["-c", "-h", "-f", archive, "-C", mount.path("repo"), "."], timeout: 60)
                }
            #expect(copy.status == 0, "backup with \(tool): \(copy)")
        }
        if tool == "tar -h" {
            let extract = try Command.run("tar", ["-x", "-f", archive, "-C", backup], timeout: 60)
            #expect(extract.status == 0, "\(extract)")
        }
        // Every tag is a regular file holding its manifest.
        for (tag, digest) in pushed.tags {
            let file = "\(backup)/multi/arch/tags/\(tag)"
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: file)) == nil, "\(tag) dereferenced")
            #expect(try sha256Hex(ofFile: file) == digest.hex)
        }
        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy =
                switch tool {
                case "rsync -L": try Command.run("rsync", ["-a", backup + "/", mount.path("repo") + "/"], timeout: 60)
                case "cp -L": try Command.run("cp", ["-r", backup + "/.", mount.path("repo")], timeout: 60)
                default: try Command.run("tar", ["-x", "-f", archive, "-C", mount.path("repo")], timeout: 60)
                }
            #expect(copy.status == 0 && copy.stderr.isEmpty, "restore with \(tool): \(copy)\n\(mount.log.tail(3000))")
            for (tag, digest) in pushed.tags {
                let link = try? FileManager.default.destinationOfSymbolicLink(atPath: mount.path("repo/multi/arch/tags/\(tag)"))
                #expect(link == "../manifests/\(digest)", "\(tag) is its link again in the mount")
            }
            #expect(!mount.log.contains("warning"), "nothing discarded: \(mount.log.tail(2000))")
        }
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", "--images", restored], timeout: 60)
        #expect(verify.status == 0 && verify.stdoutText.contains("2 tagged images checked, all complete"), "\(verify)")
        try Self.expectServed(pushed, restored: restored, workspace: workspace)
    }

    /// `skopeo copy --all` from the OCI view of an image index (two platforms) brings the index,
    /// both children, the config and the layer byte for byte.
    @Test func theOCIViewOfAnIndexCopiesEveryChildByteExact() throws {
        let workspace = try Workspace("oci-view-index")
        defer { workspace.remove() }
        let pushed = try Self.pushIndexes(workspace)
        let index = try #require(pushed.tags.first { $0.tag == "latest" }?.digest)
        let copied = workspace.path("copied")
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--oci"]) { mount in
            let copy = try Self.skopeo(["copy", "--all", "oci:\(mount.path("oci/multi/arch")):latest", "oci:" + copied])
            #expect(copy.status == 0, "skopeo copy --all from the view: \(copy)\n\(mount.log.tail(2000))")
        }
        let layout = String(decoding: try Posix.readFile(copied + "/index.json"), as: UTF8.self)
        #expect(layout.contains("\"\(index)\""), "the copy's index.json names the index: \(layout)")
        let indexBytes = try #require(pushed.bytes[index])
        let indexJSON = try JSONSerialization.jsonObject(with: Data(indexBytes)) as? [String: Any]
        let children = ((indexJSON?["manifests"] as? [[String: Any]]) ?? []).compactMap { ($0["digest"] as? String).flatMap { try? Digest(parsing: $0) } }
        #expect(children.count == 2)
        let config = Digester.digest(of: Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8))
        let layer = Digester.digest(of: try Self.gzipLayer(workspace))
        for digest in [index] + children + [config, layer] {
            let path = "\(copied)/blobs/sha256/\(digest.hex)"
            #expect(try Posix.readFile(path) == pushed.bytes[digest], "\(digest) arrived byte for byte")
        }
    }

    /// A backup that kept the `user.blobfs.*` attributes (`rsync -X`) restores with `cp -a` and
    /// `rsync -aX`, which set them on every file, exit 0 and say nothing; a later `rsync -X` from a
    /// copy without them removes them, also without a complaint. Other names are not supported.
    @Test(arguments: ["cp", "rsync"])
    func aRestoreThatCopiesExtendedAttributesSucceeds(tool: String) throws {
        let workspace = try Workspace("restore-xattr-\(tool)")
        defer { workspace.remove() }
        let image = try Self.writeImage(root: workspace.root)
        let backup = try Self.backUp(workspace, flags: "-aHX")
        let blobFile = "\(backup)/app/blobs/\(image.layer)"
        let kept = try Command.run("getfattr", ["--only-values", "-n", "user.blobfs.digest", blobFile])
        #expect(kept.stdoutText == image.layer.description, "the backup kept the attribute: \(kept)")

        let restored = try workspace.makeDirectory("restored")
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let copy =
                tool == "cp"
                ? try Command.run("cp", ["-a", backup + "/.", mount.path("repo")], timeout: 60)
                : try Command.run("rsync", ["-aHX", backup + "/", mount.path("repo") + "/"], timeout: 60)
            #expect(copy.status == 0 && copy.stderr.isEmpty, "restore with \(tool): \(copy)\n\(mount.log.tail(2000))")
            let blob = mount.path("repo/app/blobs/\(image.layer)")
            let other = try Command.run("setfattr", ["-n", "user.other", "-v", "x", blob])
            #expect(other.status != 0 && other.stderrText.contains("Operation not supported"), "\(other)")
            let computed = try Command.run("setfattr", ["-n", "user.blobfs.digest", "-v", "x", blob])
            #expect(computed.status == 0, "\(computed)")
            let value = try Command.run("getfattr", ["--only-values", "-n", "user.blobfs.digest", blob])
            #expect(value.stdoutText == image.layer.description, "the value stays computed: \(value)")
            if tool == "rsync" {
                let plain = try workspace.makeDirectory("plain")
                let strip = try Command.run("rsync", ["-aH", backup + "/", plain + "/"], timeout: 60)
                #expect(strip.status == 0, "\(strip)")
                let again = try Command.run("rsync", ["-aHX", "--size-only", plain + "/", mount.path("repo") + "/"], timeout: 60)
                #expect(again.status == 0 && again.stderr.isEmpty, "rsync -X removing the attributes: \(again)")
            }
        }
        let repository = try Registry(driver: try FilesystemDriver(root: restored)).repository("app")
        #expect(try repository.tags.current(try Tag("v1")) == image.manifest)
        #expect(try repository.manifests.get(image.manifest) == image.manifestBytes)
        #expect(try repository.blobs.get(image.layer) == image.layerBytes)
        let verify = try Command.run(try BlobfsExecutable.path(), ["verify", "--images", restored], timeout: 60)
        #expect(verify.status == 0 && verify.stdoutText.contains("all complete"), "\(verify)")
    }

    /// One OCI image written with blobfs's storage layer: a config, a layer, the manifest naming
    /// them, tagged `app:v1`.
    static func writeImage(root: String) throws -> (manifest: Digest, manifestBytes: [UInt8], layer: Digest, layerBytes: [UInt8]) {
        let repository = try Registry(driver: try FilesystemDriver(root: root)).repository("app")
        let configBytes = Array(#"{"architecture":"amd64","os":"linux"}"#.utf8)
        let layerBytes = seededBytes(count: 50_000, seed: 12_980)
        let config = try repository.blobs.put(mediaType: "application/vnd.oci.image.config.v1+json", configBytes).digest
        let layer = try repository.blobs.put(mediaType: "application/vnd.oci.image.layer.v1.tar", layerBytes).digest
        let manifestBytes = Array(
            (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","#
                + #""size":\#(configBytes.count),"digest":"\#(config)"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","#
                + #""size":\#(layerBytes.count),"digest":"\#(layer)"}]}"#).utf8)
        let manifest = try repository.manifests.put(manifestBytes, as: Digester.digest(of: manifestBytes)).digest
        try repository.tags.tag(try Tag("v1"), to: manifest)
        return (manifest, manifestBytes, layer, layerBytes)
    }

    @Test func tagsAcceptOnlyLinksToAManifestAndUntagOnlyWithAllowDelete() throws {
        let workspace = try Workspace("restore-refusals")
        defer { workspace.remove() }
        let restored = try workspace.makeDirectory("restored")
        let manifest = Digester.digest(of: Array("{}".utf8))
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let mkdir = try Command.run("mkdir", ["-p", mount.path("repo/app/tags"), mount.path("repo/app/blobs")])
            #expect(mkdir.status == 0, "\(mkdir)")
            let tags = mount.path("repo/app/tags")
            #expect(syscallOutcome { Int(Glibc.symlink("../manifests/\(manifest)", tags + "/v1")) } == .succeeded)
            #expect(syscallOutcome { Int(Glibc.symlink("/etc/passwd", tags + "/v2")) } == .failed(.EINVAL))
            #expect(syscallOutcome { Int(Glibc.symlink("../manifests/sha512:" + String(repeating: "a", count: 128), tags + "/v3")) } == .failed(.EINVAL))
            #expect(syscallOutcome { Int(Glibc.symlink("../manifests/\(manifest)", tags + "/-bad")) } == .failed(.EINVAL))
            #expect(syscallOutcome { Int(Glibc.symlink("../manifests/\(manifest)", mount.path("repo/app/blobs/x"))) } == .failed(.EPERM))
            #expect(syscallOutcome { Int(Glibc.unlink(tags + "/v1")) } == .failed(.EPERM), "untag needs --allow-delete")
            let listed = try FileManager.default.contentsOfDirectory(atPath: tags)
            #expect(listed == ["v1"])
        }
        try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write", "--allow-delete"]) { mount in
            #expect(syscallOutcome { Int(Glibc.unlink(mount.path("repo/app/tags/v1"))) } == .succeeded)
            let listed = try FileManager.default.contentsOfDirectory(atPath: mount.path("repo/app/tags"))
            #expect(listed.isEmpty)
        }
    }

    /// A file in `tags/` that cannot be a tag fails its close with EINVAL and stores nothing; it
    /// and an empty placeholder that no link replaced before the unmount are each a warning: a
    /// restore that lost a tag says so in the log.
    @Test func aTagFileThatIsNoTagIsRefusedAtCloseAndALostTagIsAWarning() throws {
        let workspace = try Workspace("restore-tag-file-refused")
        defer { workspace.remove() }
        let restored = try workspace.makeDirectory("restored")
        let log = try BlobfsMount.withMount(root: restored, mountpoint: workspace.mountpoint, options: ["--read-write"]) { mount in
            let mkdir = try Command.run("mkdir", ["-p", mount.path("repo/app/tags")])
            #expect(mkdir.status == 0, "\(mkdir)")
            let fd = try Posix.open(mount.path("repo/app/tags/v1"), O_WRONLY | O_CREAT | O_EXCL).get()
            let text = Array("latest\n".utf8)
            #expect(text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.count)
            #expect(syscallOutcome { Int(Glibc.close(fd)) } == .failed(.EINVAL), "close reports the refusal")
            // Dropped at its last close (release, which the kernel sends after close returns).
            #expect(MountTable.waitUntil(timeout: 10) { !FileManager.default.fileExists(atPath: mount.path("repo/app/tags/v1")) })
            // tar's placeholder, never replaced by its link.
            let placeholder = try Posix.open(mount.path("repo/app/tags/v2"), O_WRONLY | O_CREAT | O_EXCL).get()
            #expect(Glibc.close(placeholder) == 0)
            // rsync's temporary name, never renamed onto its tag.
            try Posix.writeFile(mount.path("repo/app/tags/.v3.AbC123"), [])
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: mount.path("repo/app/tags"))) == [".v3.AbC123", "v2"])
            return mount
        }.log
        #expect(log.contains("not a tag") && log.contains("tag file discarded, its content cannot be a tag"), "\(log)")
        #expect(log.contains("tag file discarded, at unmount: it was an empty placeholder"), "\(log)")
        #expect(log.contains("tag file discarded, at unmount: it was never renamed to its tag"), "\(log)")
        #expect(try Registry(driver: try FilesystemDriver(root: restored)).repository("app").tags.all().isEmpty)
    }
}
