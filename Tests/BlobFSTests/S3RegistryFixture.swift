import Distribution
import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// Issue 14's fixture, pushed by Debian's docker-registry through its own s3 driver: the store
/// of `S3MountTests.push` (nested repositories, a chunked upload, a cross-repository mount, a
/// deleted blob, a tagged manifest) and what the issue lists besides: a 64 MiB layer, an image
/// built with umoci and pushed with skopeo (six repositories and more), and an upload abandoned
/// halfway, whose data stays in the bucket as a multipart upload. Pushed once per server and
/// test process (the radosgw push takes a while), read by the suites that only read it.
struct S3IssueFixture: Sendable {
    let server: any S3TestServer
    let rootDirectory: String
    let pushed: S3MountTests.Pushed
    /// The image skopeo pushed: `repository:tag`, its manifest as the registry serves it.
    let image: (repository: String, tag: String, manifest: [UInt8])
    /// The abandoned upload's repository.
    let abandonedIn: String

    var imageManifest: Digest { Digester.digest(of: image.manifest) }

    /// The fixture on `kind`'s server, pushed on first use.
    static func shared(on kind: S3ServerKind) async throws -> S3IssueFixture {
        let server = try await kind.shared()
        return try pushedFixtures.withLock { fixtures in
            if let fixture = fixtures[kind] { return fixture }
            let fixture = try push(on: server)
            fixtures[kind] = fixture
            return fixture
        }
    }

    private static let pushedFixtures = Mutex<[S3ServerKind: S3IssueFixture]>([:])

    private static func push(on server: any S3TestServer) throws -> S3IssueFixture {
        let place = try S3MountTests.Place("fixture", server: server)
        defer { place.workspace.remove() }
        var pushed = try S3MountTests.push(place)
        let registry = try RegistryServer(s3: place.registryStorage)
        defer { registry.stop() }

        // A 64 MiB layer: the registry writes it as a multipart upload and moves it with
        // UploadPartCopy (32 MiB parts); then a second repository mounts it.
        let huge = seededBytes(count: 64 << 20, seed: 1410)
        let hugeDigest = Digester.digest(of: huge)
        let pushedHuge = try registry.client.pushMonolithic(repository: "data/big", bytes: huge, digest: "\(hugeDigest)")
        guard pushedHuge.status == 201 else { throw TestSupportError("64 MiB push: \(pushedHuge.status) \(pushedHuge.text)\n\(registry.log.tail(2000))") }
        let mounted = try registry.client.mount(repository: "mirror/big", from: "data/big", digest: "\(hugeDigest)")
        guard mounted.status == 201 else { throw TestSupportError("cross-repository mount of 64 MiB: \(mounted.status) \(mounted.text)") }
        pushed.blobs += [
            StoredBlob(repository: "data/big", bytes: huge, digest: hugeDigest), StoredBlob(repository: "mirror/big", bytes: huge, digest: hugeDigest),
        ]

        // An image as users push one: built with umoci, pushed with skopeo.
        let layout = try Self.buildImage(in: place.workspace)
        let reference = "docker://127.0.0.1:\(registry.port)/tools/builder:v1"
        let copy = try ImageRestoreTests.skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):v1", reference])
        guard copy.status == 0 else { throw TestSupportError("skopeo copy to the registry on \(server.name): \(copy)\n\(registry.log.tail(2000))") }
        let raw = try ImageRestoreTests.skopeo(["inspect", "--raw", "--tls-verify=false", reference])
        guard raw.status == 0 else { throw TestSupportError("skopeo inspect: \(raw)") }
        let manifest = raw.stdout
        for digest in try Self.referencedDigests(manifest) {
            let bytes = try Posix.readFile(layout + "/blobs/sha256/" + digest.hex)
            pushed.blobs.append(StoredBlob(repository: "tools/builder", bytes: bytes, digest: digest))
        }

        // An upload started and fed, never finished.
        let started = try registry.client.send("POST", url: "/v2/library/alpine/blobs/uploads/")
        let location = started.header("Location") ?? ""
        let uploadPath = location.hasPrefix("http") ? String(location.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" }) : location
        let patched = try registry.client.send(
            "PATCH", url: uploadPath, headers: ["Content-Type": "application/octet-stream"], body: seededBytes(count: 200_000, seed: 1411))
        guard started.status == 202, patched.status == 202 else {
            throw TestSupportError("abandoned upload: start \(started.status), PATCH \(patched.status) \(patched.text)")
        }
        return S3IssueFixture(
            server: server, rootDirectory: place.rootDirectory, pushed: pushed, image: ("tools/builder", "v1", manifest), abandonedIn: "library/alpine")
    }

    /// An OCI layout holding one image (`v1`): umoci's empty image with one layer of a file.
    private static func buildImage(in workspace: Workspace) throws -> String {
        let layout = workspace.path("layout")
        let bundle = workspace.path("bundle")
        for arguments in [["init", "--layout", layout], ["new", "--image", layout + ":v1"], ["unpack", "--rootless", "--image", layout + ":v1", bundle]] {
            let step = try Command.run("umoci", arguments, timeout: 60)
            guard step.status == 0 else { throw TestSupportError("umoci \(arguments): \(step)") }
        }
        try Posix.writeFile(bundle + "/rootfs/tool.bin", seededBytes(count: 300_000, seed: 1412))
        let repack = try Command.run("umoci", ["repack", "--image", layout + ":v1", bundle], timeout: 60)
        guard repack.status == 0 else { throw TestSupportError("umoci repack: \(repack)") }
        return layout
    }

    /// The config and layer digests an image manifest names.
    static func referencedDigests(_ manifest: [UInt8]) throws -> [Digest] {
        let object = try JSONSerialization.jsonObject(with: Data(manifest)) as? [String: Any]
        let config = (object?["config"] as? [String: Any])?["digest"] as? String
        let layers = ((object?["layers"] as? [[String: Any]]) ?? []).compactMap { $0["digest"] as? String }
        guard let config, !layers.isEmpty else { throw TestSupportError("not an image manifest: \(String(decoding: manifest, as: UTF8.self))") }
        return try ([config] + layers).map { try Digest(parsing: $0) }
    }
}
