import Distribution
import Storage

/// The demo registry store of `make run`, written through blobfs's own storage layer (uploads,
/// commits, cross-repository mounts): nested names, a name that is also another's prefix
/// (`team/app`, `team/app/web`), a blob uploaded under its sha512 digest (an alias link), blobs
/// shared between repositories, sizes from 0 bytes to 64 MiB of seeded pseudo-random data, and
/// one unfinished upload for `purge-uploads`, and two tagged images (manifests and tags).
enum DemoStore {
    /// One blob file as it appears in a mount.
    struct Entry {
        var repository: RepositoryName
        var digest: Digest
        var size: Int64
        var note: String
    }

    /// What was written.
    struct Summary {
        var entries: [Entry] = []
        /// Distinct blobs under blobs/, and their bytes.
        var storedBlobs = 0
        var storedBytes: Int64 = 0
        var unfinishedUploads = 0
        /// Tagged images: `<repository>:<tag>` and the manifest each names.
        var images: [(reference: String, manifest: Digest)] = []
    }

    static let greeting = """
        Hello from blobfs!
        This file is a blob of the repository library/alpine. The registry stores it under
        docker/registry/v2/blobs/sha256/<first two hex digits>/<hex>/data; blobfs shows it as
        repo/library/alpine/blobs/sha256:<hex>.

        """

    static func write(into registry: Registry) throws -> Summary {
        var summary = Summary()
        func add(
            _ repository: Repository, _ descriptor: Descriptor, _ note: String, as digest: Digest? = nil, stored: Bool = true
        ) {
            summary.entries.append(
                Entry(repository: repository.name, digest: digest ?? descriptor.digest, size: descriptor.size, note: note))
            if stored {
                summary.storedBlobs += 1
                summary.storedBytes += descriptor.size
            }
        }
        let alpine = try registry.repository("library/alpine")
        let ubuntu = try registry.repository("library/ubuntu")
        let app = try registry.repository("team/app")
        let web = try registry.repository("team/app/web")

        let hello = try alpine.blobs.put(mediaType: "text/plain", Array(greeting.utf8))
        add(alpine, hello, "text: try cat")
        add(alpine, try upload(size: 2 << 10, seed: 1, into: alpine).descriptor, "2 KiB")
        let alpineLayer = try upload(size: 3 << 20, seed: 2, into: alpine).descriptor
        add(alpine, alpineLayer, "3 MiB, the layer of library/alpine:latest")

        add(ubuntu, try upload(size: 29 << 20, seed: 3, into: ubuntu).descriptor, "29 MiB")
        add(
            ubuntu, try ubuntu.blobs.mount(hello.digest, from: alpine.blobs), "the text, shared with library/alpine",
            stored: false)

        let large = try upload(size: 64 << 20, seed: 4, into: app).descriptor
        add(app, large, "64 MiB")
        add(app, try app.blobs.put(mediaType: "application/octet-stream", []), "empty")

        add(web, try upload(size: 1 << 20, seed: 5, into: web).descriptor, "1 MiB")
        let (aliased, alias) = try upload(size: 512 << 10, seed: 6, into: web, alias: .sha512)
        add(web, aliased, "512 KiB, uploaded as \(alias.algorithm)")
        add(web, aliased, "the same blob under its sha512 digest (alias link)", as: alias, stored: false)
        add(web, try web.blobs.mount(large.digest, from: app.blobs), "shared with team/app: one copy on disk", stored: false)

        // Whole images: an OCI manifest naming a config and a layer, tagged; two tags on one.
        summary.images += try image(in: alpine, layer: alpineLayer, tags: ["latest", "3.19"], os: "alpine")
        summary.images += try image(in: web, layer: large, tags: ["v1"], os: "web")

        // Left open (closed, not committed): lives in _uploads/, invisible in a mount.
        let unfinished = try web.blobs.create()
        try unfinished.write(seededBytes(count: 100 << 10, seed: 7))
        try unfinished.close()
        summary.unfinishedUploads = 1
        return summary
    }

    /// Stores an image config and an OCI image manifest naming it and `layer`, and tags it, as a
    /// push does: the manifest under `manifests/`, each tag a link to it under `tags/`.
    static func image(in repository: Repository, layer: Descriptor, tags: [String], os: String) throws
        -> [(reference: String, manifest: Digest)]
    {
        let configJSON = #"{"architecture":"amd64","os":"linux","config":{"Labels":{"demo":"\#(os)"}},"rootfs":{"type":"layers","diff_ids":["\#(layer.digest)"]}}"#
        let config = try repository.blobs.put(mediaType: "application/vnd.oci.image.config.v1+json", Array(configJSON.utf8))
        let manifestJSON = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":\(config.size),"digest":"\(config.digest)"},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":\(layer.size),"digest":"\(layer.digest)"}]}
            """
        let bytes = Array(manifestJSON.utf8)
        let manifest = try repository.manifests.put(bytes, as: Digester.digest(of: bytes)).digest
        for tag in tags { try repository.tags.tag(try Tag(tag), to: manifest) }
        return tags.map { ("\(repository.name):\($0)", manifest) }
    }

    /// Uploads `size` seeded bytes in 1 MiB writes and commits under sha256, or under the digest
    /// of `alias` (which makes the store link both).
    static func upload(size: Int, seed: UInt64, into repository: Repository, alias: DigestAlgorithm? = nil) throws
        -> (descriptor: Descriptor, provisional: Digest)
    {
        let writer = try repository.blobs.create()
        let digester = Digester(alias ?? .canonical)
        var generator = SeededGenerator(seed: seed)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var remaining = size
        while remaining > 0 {
            let n = min(remaining, chunk.count)
            generator.fill(&chunk)
            try chunk.withUnsafeBytes { bytes in
                let part = UnsafeRawBufferPointer(rebasing: bytes[..<n])
                digester.update(part)
                try writer.write(part)
            }
            remaining -= n
        }
        let provisional = digester.digest()
        return (try writer.commit(provisional: Descriptor(digest: provisional, size: Int64(size))), provisional)
    }

    static func seededBytes(count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes = [UInt8](repeating: 0, count: count)
        generator.fill(&bytes)
        return bytes
    }
}

/// splitmix64 (Steele, Lea, Flood): the same seed always gives the same bytes, fast enough for
/// 64 MiB even in a debug build.
struct SeededGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Fills the whole array, eight bytes per step.
    mutating func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset + 8 <= raw.count {
                raw.storeBytes(of: next().littleEndian, toByteOffset: offset, as: UInt64.self)
                offset += 8
            }
            var word = next()
            while offset < raw.count {
                raw[offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                offset += 1
            }
        }
    }
}
