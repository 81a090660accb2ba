import Distribution
import Logging
import Storage

/// The mounted tree (docs/architecture.md, "The mounted tree") over a registry's storage, read straight from disk so that it follows a
/// live registry: `repo/<component>/…/blobs/<digest>`. A directory's path is the repository name
/// so far; it holds `blobs` when that path is a repository (on disk, `_layers` exists), child
/// components for longer names, and — when the path ends in `/blobs` of a repository — the digests
/// linked there. Digests contain `:`, components cannot, so nothing is ambiguous.
struct BlobTree: Sendable {
    let registry: Registry
    let logger: Logger
    /// Attributes of blob names that already have an inode: once the link is confirmed to hold
    /// the same blob, they answer a lookup without a stat of the data file.
    let knownAttributes: @Sendable (BlobName) -> NodeAttributes?

    /// One name in a directory, resolved.
    struct Entry: Sendable {
        var name: String
        var node: Node
        var attributes: NodeAttributes
    }

    /// Resolves `name` in the directory `path`; nil when there is no such name.
    func lookup(_ name: String, in path: String, directoryTime: Int64) throws(BlobError) -> Entry? {
        if name.contains(":") {
            guard let repository = repositoryBehind(path), let digest = try? Digest(parsing: name) else { return nil }
            let blob = BlobName(repository: repository.name, digest: digest)
            do {
                // Membership from the link on disk, never from a cache (a cache hit is not proof
                // that this repository links the blob); size and time from the data file.
                let target = try repository.blobs.linkTarget(digest)
                if let known = knownAttributes(blob), known.descriptor?.digest == target {
                    return Entry(name: name, node: .blob(blob), attributes: known)
                }
                let data = try repository.blobs.resolve(digest, linkedTo: target)
                return Entry(
                    name: name, node: .blob(blob),
                    attributes: NodeAttributes(size: data.descriptor.size, modified: data.modified, descriptor: data.descriptor))
            } catch .unknown {
                return nil
            }
        }
        let child = path.isEmpty ? name : path + "/" + name
        if name == "blobs", isRepository(path) {
            return Entry(name: name, node: .directory(path: child), attributes: NodeAttributes(modified: directoryTime))
        }
        guard RepositoryName.problem(inComponent: name.utf8) == nil, let prefix = try? RepositoryName(child),
            registry.isNamePrefix(prefix)
        else { return nil }
        return Entry(name: name, node: .directory(path: child), attributes: NodeAttributes(modified: directoryTime))
    }

    /// Every name in the directory `path`, sorted: components, `blobs`, then digests. Blobs whose
    /// link is dangling (a GC leftover) are left out; corrupt ones are logged and left out.
    func entries(in path: String, directoryTime: Int64) throws(BlobError) -> [Entry] {
        var names = Set<String>()
        if path.isEmpty {
            names.formUnion(try registry.childComponents(of: nil))
        } else if let prefix = try? RepositoryName(path) {
            names.formUnion(try registry.childComponents(of: prefix))
        }
        if isRepository(path) { names.insert("blobs") }
        var result = names.sorted().map {
            Entry(name: $0, node: .directory(path: path.isEmpty ? $0 : path + "/" + $0), attributes: NodeAttributes(modified: directoryTime))
        }
        if let repository = repositoryBehind(path) {
            let knownAttributes = self.knownAttributes
            let name = repository.name
            let listed = try repository.blobs.listing { digest, target in
                // A name the kernel already holds, whose link was just read and still holds the
                // same blob: its attributes stand with no system call (an open checks the data file).
                guard let known = knownAttributes(BlobName(repository: name, digest: digest)), let descriptor = known.descriptor,
                    descriptor.digest == target
                else { return nil }
                return BlobDataFile(descriptor: descriptor, modified: known.modified)
            }
            for blob in listed {
                switch blob.file {
                case .success(let data):
                    result.append(
                        Entry(
                            name: blob.name.description, node: .blob(BlobName(repository: name, digest: blob.name)),
                            attributes: NodeAttributes(size: data.descriptor.size, modified: data.modified, descriptor: data.descriptor)))
                case .failure(let error):
                    logger.error("skipping a blob that cannot be read", metadata: [
                        "repository": "\(name)", "digest": "\(blob.name)", "error": "\(error)",
                    ])
                }
            }
        }
        return result
    }

    // MARK: - Helpers

    /// The repository whose blobs the directory `path` lists: `path` is `<name>/blobs` and
    /// `<name>` is a repository.
    func repositoryOwningBlobs(_ path: String) -> Repository? {
        guard let repository = repositoryBehind(path), isRepository(repository.name.description) else { return nil }
        return repository
    }

    /// The repository that the directory `path` (`<name>/blobs`) stands for, without asking the
    /// disk whether it still is one: reading its links answers that, and saves a stat per lookup.
    private func repositoryBehind(_ path: String) -> Repository? {
        guard path.hasSuffix("/blobs") else { return nil }
        return try? registry.repository(String(path.dropLast("/blobs".count)))
    }

    /// A repository is a name with `_layers` on disk (docs/storage-format.md, "Repositories").
    func isRepository(_ path: String) -> Bool {
        guard !path.isEmpty, let name = try? RepositoryName(path) else { return false }
        return registry.isRepository(name)
    }
}
