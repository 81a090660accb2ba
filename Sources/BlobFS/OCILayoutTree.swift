import Dispatch
import Distribution
import Glibc
import Logging
import Storage

/// The opt-in OCI image layout view (`--oci`): each repository as a read-only OCI image layout,
/// for skopeo (`oci:<mnt>/oci/<name>:<tag>`) and umoci:
///
/// ```
/// oci/<component>/…/oci-layout          {"imageLayoutVersion":"1.0.0"}
/// oci/<component>/…/index.json          every tag, with its manifest's true media type and the
///                                       org.opencontainers.image.ref.name annotation, then the
///                                       untagged root manifests; generated at lookup, at most
///                                       once per tags' timeout
/// oci/<component>/…/blobs/<alg>/<hex>   the repository's blobs and manifest revisions
/// ```
///
/// Components are spelled as in `repo/` (`@<component>` for a reserved word). A file under
/// `blobs/` is the same node as the blob or manifest under `repo/` (verified as it is). A Docker
/// media type is never relabelled as OCI: that would change the digests tools compute.
struct OCILayoutTree: Sendable {
    let registry: Registry
    let logger: Logger
    /// Each repository's index.json, as generated last (for the tags' timeout).
    let indexes: GeneratedIndexes
    /// Manifests' sizes, media types and children, by digest.
    let facts = ManifestFacts()

    /// `indexLifetime`: how long a generated index.json stands (the tags' timeout).
    init(registry: Registry, logger: Logger, indexLifetime: Double) {
        self.registry = registry
        self.logger = logger
        indexes = GeneratedIndexes(lifetime: indexLifetime)
    }

    /// What a directory of the view is.
    enum Place: Equatable {
        case names(RepositoryName?)
        case blobs(RepositoryName)
        case algorithm(RepositoryName, DigestAlgorithm)
    }

    static let layoutFile = Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8)

    static func place(of path: String) -> Place? {
        if path.isEmpty { return .names(nil) }
        var shown = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if shown.count >= 3, shown[shown.count - 2] == "blobs", let algorithm = DigestAlgorithm(rawValue: shown[shown.count - 1]) {
            shown.removeLast(2)
            return repositoryName(shown).map { .algorithm($0, algorithm) }
        }
        if shown.count >= 2, shown[shown.count - 1] == "blobs" {
            shown.removeLast()
            return repositoryName(shown).map { .blobs($0) }
        }
        return repositoryName(shown).map { .names($0) }
    }

    private static func repositoryName(_ shown: [String]) -> RepositoryName? {
        var components: [String] = []
        for part in shown {
            guard let component = BlobTree.component(shownAs: part) else { return nil }
            components.append(component)
        }
        return try? RepositoryName(components.joined(separator: "/"))
    }

    func lookup(_ name: String, in path: String, directoryTime: Int64) throws(BlobError) -> BlobTree.Entry? {
        let child = path.isEmpty ? name : path + "/" + name
        switch Self.place(of: path) {
        case nil:
            return nil
        case .names(let prefix):
            if let prefix, try registry.isRepository(prefix) {
                switch name {
                case "oci-layout":
                    return BlobTree.Entry(
                        name: name, node: .ociFile(.layout(prefix)),
                        attributes: NodeAttributes(size: Int64(Self.layoutFile.count), modified: directoryTime))
                case "index.json":
                    return BlobTree.Entry(
                        name: name, node: .ociFile(.index(prefix)),
                        attributes: NodeAttributes(size: Int64(try index(of: prefix).count), modified: directoryTime))
                case "blobs":
                    return BlobTree.Entry(name: name, node: .ociDirectory(path: child), attributes: NodeAttributes(modified: directoryTime))
                default: break
                }
            }
            guard let component = BlobTree.component(shownAs: name),
                let full = try? RepositoryName(prefix.map { "\($0)/\(component)" } ?? component), try registry.isNamePrefix(full)
            else { return nil }
            return BlobTree.Entry(name: name, node: .ociDirectory(path: child), attributes: NodeAttributes(modified: directoryTime))
        case .blobs:
            guard DigestAlgorithm(rawValue: name) != nil else { return nil }
            return BlobTree.Entry(name: name, node: .ociDirectory(path: child), attributes: NodeAttributes(modified: directoryTime))
        case .algorithm(let repository, let algorithm):
            guard let digest = try? Digest(parsing: "\(algorithm.rawValue):\(name)") else { return nil }
            return try file(digest, in: repository, shownAs: name)
        }
    }

    func entries(in path: String, directoryTime: Int64) throws(BlobError) -> [BlobTree.Entry] {
        switch Self.place(of: path) {
        case nil:
            return []
        case .names(let prefix):
            var result = try registry.childComponents(of: prefix).map { BlobTree.shown($0) }.sorted().map {
                BlobTree.Entry(name: $0, node: .ociDirectory(path: path.isEmpty ? $0 : path + "/" + $0), attributes: NodeAttributes(modified: directoryTime))
            }
            if let prefix, try registry.isRepository(prefix) {
                for name in ["blobs", "index.json", "oci-layout"] {
                    if let entry = try lookup(name, in: path, directoryTime: directoryTime) { result.append(entry) }
                }
            }
            return result
        case .blobs(let repository):
            let algorithms = Set(try files(of: repository).map(\.digest.algorithm))
            return algorithms.map(\.rawValue).sorted().map {
                BlobTree.Entry(name: $0, node: .ociDirectory(path: path + "/" + $0), attributes: NodeAttributes(modified: directoryTime))
            }
        case .algorithm(let repository, let algorithm):
            return try files(of: repository).filter { $0.digest.algorithm == algorithm }.map(\.entry)
        }
    }

    /// A blob or manifest of the repository, named by its hex: the same node as under `repo/`.
    private func file(_ digest: Digest, in repositoryName: RepositoryName, shownAs name: String) throws(BlobError) -> BlobTree.Entry? {
        let repository = try registry.repository(repositoryName)
        do {
            let data = try repository.blobs.resolve(digest)
            return BlobTree.Entry(
                name: name, node: .blob(BlobName(repository: repositoryName, digest: digest)),
                attributes: NodeAttributes(size: data.descriptor.size, modified: data.modified, descriptor: data.descriptor))
        } catch .unknown {}
        do {
            let manifest = try repository.manifests.resolve(digest)
            guard manifest.linkSet == .manifestRevisions else { return nil }
            return BlobTree.Entry(
                name: name, node: .manifest(BlobName(repository: repositoryName, digest: digest)),
                attributes: NodeAttributes(size: manifest.size, modified: manifest.modified, descriptor: Descriptor(digest: digest, size: manifest.size)))
        } catch .unknown {
            return nil
        }
    }

    /// Every blob and manifest revision of the repository, as the files under `blobs/<alg>/`.
    private func files(of repositoryName: RepositoryName) throws(BlobError) -> [(digest: Digest, entry: BlobTree.Entry)] {
        let repository = try registry.repository(repositoryName)
        var result: [(Digest, BlobTree.Entry)] = []
        var seen = Set<Digest>()
        for blob in try repository.blobs.listing(known: { _, _ in nil }) {
            guard case .success(let data) = blob.file, seen.insert(blob.name).inserted else { continue }
            result.append((blob.name, BlobTree.Entry(
                name: blob.name.hex, node: .blob(BlobName(repository: repositoryName, digest: blob.name)),
                attributes: NodeAttributes(size: data.descriptor.size, modified: data.modified, descriptor: data.descriptor))))
        }
        for revision in try repository.manifests.revisions() {
            guard case .success(let file) = revision.file, seen.insert(revision.digest).inserted else { continue }
            result.append((revision.digest, BlobTree.Entry(
                name: revision.digest.hex, node: .manifest(BlobName(repository: repositoryName, digest: revision.digest)),
                attributes: NodeAttributes(size: file.size, modified: file.modified, descriptor: Descriptor(digest: revision.digest, size: file.size)))))
        }
        return result.sorted { $0.0.hex < $1.0.hex }
    }

    /// The layout's `index.json`: generated at most once per repository within the tags'
    /// timeout (`GeneratedIndexes`), so that the lookup that sizes it and the open that reads it
    /// right after share one generation, and a tag move shows once the timeout has passed.
    func index(of repositoryName: RepositoryName) throws(BlobError) -> [UInt8] {
        if let recent = indexes.recent(repositoryName) { return recent }
        let bytes = try generateIndex(of: repositoryName)
        indexes.keep(bytes, for: repositoryName)
        return bytes
    }

    /// One descriptor per tag (sorted, with the manifest's true media type and its name as
    /// `org.opencontainers.image.ref.name`), then every revision that is neither tagged nor a
    /// child of another revision. Tags whose manifest cannot be read are left out (logged).
    /// Which manifests the repository has is read from storage each time (its revision links,
    /// one stat each, and its tags' current links); what a manifest is comes from `facts`,
    /// read once per digest.
    func generateIndex(of repositoryName: RepositoryName) throws(BlobError) -> [UInt8] {
        let repository = try registry.repository(repositoryName)
        var sizes: [Digest: Int64] = [:]
        let revisions = try repository.manifests.revisions().compactMap { revision -> Digest? in
            guard case .success(let file) = revision.file else { return nil }
            sizes[revision.digest] = file.size
            return revision.digest
        }
        let blobStore = registry.blobStore
        /// A revision's bytes: its link was read and its data file statted just now, so the data
        /// file is read directly (a larger one than the registry accepts is refused, as `get`
        /// refuses it).
        @Sendable func revisionBytes(_ digest: Digest, size: Int64) throws(BlobError) -> [UInt8] {
            guard size <= Int64(ManifestStore.sizeLimit) else { throw .invalidLength(expected: Int64(ManifestStore.sizeLimit), actual: size) }
            return try blobStore.get(digest)
        }
        learnFacts(of: revisions.filter { !self.facts.has($0) }.map { ($0, sizes[$0]!) }, reading: revisionBytes)
        /// A listed revision's facts; a tag's manifest that is no revision (registry 2.1.0 linked
        /// some in `_layers` only, or it is gone) is read through its link each time, as a GET by
        /// tag reads it, since only the revision listing says that a manifest is there.
        func facts(of digest: Digest) -> ManifestFacts.Facts? {
            if let size = sizes[digest] {
                return try? self.facts.facts(of: digest) { () throws(BlobError) in try revisionBytes(digest, size: size) }
            }
            guard let bytes = try? repository.manifests.get(digest) else { return nil }
            return try? self.facts.facts(of: digest) { () throws(BlobError) in bytes }
        }
        func descriptor(_ digest: Digest, tag: Tag?) -> String? {
            guard let known = facts(of: digest), let mediaType = known.servedMediaType else {
                logger.warning("left out of index.json: its manifest cannot be read", metadata: ["repository": "\(repositoryName)", "manifest": "\(digest)"])
                return nil
            }
            let annotation = tag.map { #","annotations":{"org.opencontainers.image.ref.name":\#(Self.quoted($0.value))}"# } ?? ""
            return #"{"mediaType":\#(Self.quoted(mediaType)),"digest":"\#(digest)","size":\#(known.size)\#(annotation)}"#
        }
        var descriptors: [String] = []
        var tagged = Set<Digest>()
        for link in try repository.tags.currentLinks() {
            tagged.insert(link.digest)
            if let entry = descriptor(link.digest, tag: link.tag) { descriptors.append(entry) }
        }
        var children = Set<Digest>()
        for digest in revisions { children.formUnion(facts(of: digest)?.childManifests ?? []) }
        for digest in revisions where !tagged.contains(digest) && !children.contains(digest) {
            if let entry = descriptor(digest, tag: nil) { descriptors.append(entry) }
        }
        let json = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(descriptors.joined(separator: ","))]}"#
        return Array(json.utf8)
    }

    /// Finds the facts of manifests not known yet, spread over the CPUs when there are many
    /// (reading and parsing ten thousand manifests is the whole cost of a first index.json).
    private func learnFacts(of manifests: [(Digest, Int64)], reading bytes: @escaping @Sendable (Digest, Int64) throws(BlobError) -> [UInt8]) {
        let threads = min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), manifests.count / 256)
        let facts = self.facts
        let learn: @Sendable (Int) -> Void = { index in
            let (digest, size) = manifests[index]
            _ = try? facts.facts(of: digest) { () throws(BlobError) in try bytes(digest, size) }
        }
        guard threads > 1 else { return manifests.indices.forEach(learn) }
        DispatchQueue.concurrentPerform(iterations: threads) { slice in
            for index in (manifests.count * slice / threads)..<(manifests.count * (slice + 1) / threads) { learn(index) }
        }
    }

    /// A JSON string literal.
    static func quoted(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
