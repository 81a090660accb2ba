import Distribution
import Logging
import Storage

/// The opt-in OCI image layout view (`--oci`): each repository as a read-only OCI image layout,
/// for skopeo (`oci:<mnt>/oci/<name>:<tag>`) and umoci:
///
/// ```
/// oci/<component>/…/oci-layout          {"imageLayoutVersion":"1.0.0"}
/// oci/<component>/…/index.json          every tag, with its manifest's true media type and the
///                                       org.opencontainers.image.ref.name annotation, then the
///                                       untagged root manifests; generated at lookup and open
/// oci/<component>/…/blobs/<alg>/<hex>   the repository's blobs and manifest revisions
/// ```
///
/// Components are spelled as in `repo/` (`@<component>` for a reserved word). A file under
/// `blobs/` is the same node as the blob or manifest under `repo/` (verified as it is). A Docker
/// media type is never relabelled as OCI: that would change the digests tools compute.
struct OCILayoutTree: Sendable {
    let registry: Registry
    let logger: Logger

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
            if let prefix, registry.isRepository(prefix) {
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
                let full = try? RepositoryName(prefix.map { "\($0)/\(component)" } ?? component), registry.isNamePrefix(full)
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
            if let prefix, registry.isRepository(prefix) {
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

    /// The layout's `index.json`: one descriptor per tag (sorted, with the manifest's true media
    /// type and its name as `org.opencontainers.image.ref.name`), then every revision that is
    /// neither tagged nor a child of another revision. Tags whose manifest cannot be read are left
    /// out (logged).
    func index(of repositoryName: RepositoryName) throws(BlobError) -> [UInt8] {
        let repository = try registry.repository(repositoryName)
        var descriptors: [String] = []
        var tagged = Set<Digest>()
        func descriptor(_ digest: Digest, tag: Tag?) -> String? {
            guard let bytes = try? repository.manifests.get(digest), let mediaType = try? ManifestContent.servedMediaType(of: bytes) else {
                logger.warning("left out of index.json: its manifest cannot be read", metadata: ["repository": "\(repositoryName)", "manifest": "\(digest)"])
                return nil
            }
            let annotation = tag.map { #","annotations":{"org.opencontainers.image.ref.name":\#(Self.quoted($0.value))}"# } ?? ""
            return #"{"mediaType":\#(Self.quoted(mediaType)),"digest":"\#(digest)","size":\#(bytes.count)\#(annotation)}"#
        }
        for link in try repository.tags.currentLinks() {
            tagged.insert(link.digest)
            if let entry = descriptor(link.digest, tag: link.tag) { descriptors.append(entry) }
        }
        let revisions = try repository.manifests.revisions().compactMap { revision -> Digest? in
            if case .success = revision.file { return revision.digest }
            return nil
        }
        var children = Set<Digest>()
        for digest in revisions {
            guard let bytes = try? repository.manifests.get(digest), let references = try? ManifestContent.references(of: bytes) else { continue }
            for reference in references where reference.role == .manifest { children.insert(reference.digest) }
        }
        for digest in revisions where !tagged.contains(digest) && !children.contains(digest) {
            if let entry = descriptor(digest, tag: nil) { descriptors.append(entry) }
        }
        let json = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(descriptors.joined(separator: ","))]}"#
        return Array(json.utf8)
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
