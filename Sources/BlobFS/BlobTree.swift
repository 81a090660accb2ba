import Distribution
import Logging
import Storage

/// The mounted tree (docs/architecture.md, "The mounted tree") over a registry's storage, read
/// straight from storage so that it follows a live registry:
///
/// ```
/// repo/<component>/…/blobs/<digest>           the blobs the repository links
/// repo/<component>/…/manifests/sha256:<hex>   its manifest revisions
/// repo/<component>/…/tags/<tag>               symbolic links to ../manifests/sha256:<hex>
/// ```
///
/// A directory's path is the names shown so far, `/`-separated ("" is `repo/` itself). A
/// repository's directory holds `blobs`, `manifests` and `tags`, and child components for longer
/// names. A name component spelled like one of the reserved entries (`blobs`, `manifests`,
/// `tags`, and the OCI view's `index.json` and `oci-layout`) is shown as `@<component>`, so that
/// no path is ambiguous, whether or not its parent is a repository yet: the repository
/// `team/blobs/app` is `repo/team/@blobs/app/`. `@` is outside the name grammar, so the escaped
/// form can never be a component itself.
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

    /// The directories a repository's directory holds.
    enum Section: String, CaseIterable, Sendable {
        case blobs, manifests, tags
    }

    /// Names a component cannot be shown as: the sections, and the OCI view's files.
    static let reserved: Set<String> = Set(Section.allCases.map(\.rawValue)).union(["index.json", "oci-layout"])

    /// What a directory of the tree is.
    enum Place: Equatable, Sendable {
        /// `repo/` (nil) or the directory of a name: a name prefix, a repository, or both.
        case names(RepositoryName?)
        /// One section of a repository.
        case section(Section, of: RepositoryName)
    }

    /// The place a directory path names; nil for a path that names nothing (a bare reserved
    /// component, an invalid name).
    static func place(of path: String) -> Place? {
        PlaceMemo.shared.place(of: path, parsing: parsePlace)
    }

    private static func parsePlace(_ path: String) -> Place? {
        if path.isEmpty { return .names(nil) }
        let shown = path.split(separator: "/", omittingEmptySubsequences: false)
        if shown.count >= 2, let section = Section(rawValue: String(shown[shown.count - 1])) {
            return repositoryName(shown.dropLast()).map { .section(section, of: $0) }
        }
        return repositoryName(shown[...]).map { .names($0) }
    }

    /// The repository name the shown components spell: `@<reserved>` is the component
    /// `<reserved>`; a bare reserved word is not a component.
    private static func repositoryName(_ shown: ArraySlice<Substring>) -> RepositoryName? {
        var components: [String] = []
        for part in shown {
            guard let component = component(shownAs: String(part)) else { return nil }
            components.append(component)
        }
        return try? RepositoryName(components.joined(separator: "/"))
    }

    /// The component a name shown in a directory of names stands for; nil when it cannot be one
    /// (a reserved word without `@`, `@` before anything else, outside the grammar).
    static func component(shownAs name: String) -> String? {
        let component: String
        if name.hasPrefix("@") {
            component = String(name.dropFirst())
            guard reserved.contains(component) else { return nil }
        } else {
            guard !reserved.contains(name) else { return nil }
            component = name
        }
        return RepositoryName.problem(inComponent: component.utf8) == nil ? component : nil
    }

    /// How a component is shown.
    static func shown(_ component: some StringProtocol) -> String {
        reserved.contains(String(component)) ? "@" + component : String(component)
    }

    /// The directory path of a repository's name.
    static func path(of name: RepositoryName) -> String {
        name.description.split(separator: "/").map { shown($0) }.joined(separator: "/")
    }

    /// The path of a section of a repository.
    static func path(of section: Section, in name: RepositoryName) -> String {
        path(of: name) + "/" + section.rawValue
    }

    /// Where a tag's symbolic link points: its manifest, beside it.
    static func linkTarget(of manifest: Digest) -> String {
        "../manifests/\(manifest)"
    }

    /// The manifest a tag's link target names: exactly `../manifests/sha256:<64 hex>`, the form
    /// `linkTarget(of:)` writes and a backup of the mount holds.
    static func manifest(linkedBy target: String) -> Digest? {
        guard target.hasPrefix("../manifests/"), let digest = try? Digest(parsing: String(target.dropFirst("../manifests/".count))),
            digest.algorithm == .sha256
        else { return nil }
        return digest
    }

    // MARK: - Lookups and listings

    /// Resolves `name` in the directory `path`; nil when there is no such name.
    func lookup(_ name: String, in path: String, directoryTime: Int64) throws(BlobError) -> Entry? {
        switch Self.place(of: path) {
        case nil:
            return nil
        case .section(.blobs, let repository):
            return try blob(name, in: repository)
        case .section(.manifests, let repository):
            return try manifest(name, in: repository)
        case .section(.tags, let repository):
            return try tag(name, in: repository, directoryTime: directoryTime)
        case .names(let prefix):
            let child = path.isEmpty ? name : path + "/" + name
            if let section = Section(rawValue: name) {
                guard let prefix, try sections(of: prefix).contains(section) else { return nil }
                return Entry(name: name, node: .directory(path: child), attributes: NodeAttributes(modified: directoryTime))
            }
            guard let component = Self.component(shownAs: name),
                let full = try? RepositoryName(prefix.map { "\($0)/\(component)" } ?? component), try registry.isNamePrefix(full)
            else { return nil }
            return Entry(name: name, node: .directory(path: child), attributes: NodeAttributes(modified: directoryTime))
        }
    }

    /// Every name in the directory `path`, sorted: components and sections, then digests or
    /// tags. Blobs and manifests whose link is dangling (a GC leftover) are left out; corrupt ones
    /// are logged and left out.
    func entries(in path: String, directoryTime: Int64) throws(BlobError) -> [Entry] {
        switch Self.place(of: path) {
        case nil:
            return []
        case .names(let prefix):
            var names = Set(try registry.childComponents(of: prefix).map { Self.shown($0) })
            if let prefix { names.formUnion(try sections(of: prefix).map(\.rawValue)) }
            return names.sorted().map {
                Entry(name: $0, node: .directory(path: path.isEmpty ? $0 : path + "/" + $0), attributes: NodeAttributes(modified: directoryTime))
            }
        case .section(.blobs, let repository):
            return try blobs(of: repository)
        case .section(.manifests, let repository):
            return try manifests(of: repository)
        case .section(.tags, let repository):
            return try tags(of: repository, directoryTime: directoryTime)
        }
    }

    // MARK: - Helpers

    /// The repository whose `blobs/` the directory `path` is, when it is a repository now.
    func repositoryOwningBlobs(_ path: String) -> Repository? {
        guard case .section(.blobs, let name)? = Self.place(of: path), (try? registry.isRepository(name)) == true else { return nil }
        return try? registry.repository(name)
    }

    /// The sections a name's directory shows: none unless it is a repository; then `blobs`, and
    /// `manifests` and `tags` when the repository has them on disk (a push, or a restore's mkdir,
    /// made them). Shown only when they exist, so that `cp -a`, which makes every directory it
    /// copies, finds none of them there already.
    func sections(of name: RepositoryName) throws(BlobError) -> [Section] {
        guard try registry.isRepository(name) else { return [] }
        return [.blobs] + (try registry.hasManifests(name) ? [.manifests] : []) + (try registry.hasTags(name) ? [.tags] : [])
    }

    /// The repository and section a new file in the directory `path` is written into: a
    /// repository's `blobs/`, `manifests/` or `tags/` (placeholders only), when it is a
    /// repository now.
    func uploadTarget(_ path: String) -> (repository: Repository, section: Section)? {
        guard case .section(let section, let name)? = Self.place(of: path), (try? registry.isRepository(name)) == true,
            let repository = try? registry.repository(name)
        else { return nil }
        return (repository, section)
    }

    /// Whether the directory `path` is a repository's own directory (`_layers` exists on disk:
    /// docs/storage-format.md, "Repositories").
    func isRepository(_ path: String) -> Bool {
        guard case .names(let name?)? = Self.place(of: path) else { return false }
        return (try? registry.isRepository(name)) == true
    }

    /// A digest name in `blobs/`: membership from the link on disk, never from a cache (a cache
    /// hit is not proof that this repository links the blob); size and time from the data file.
    private func blob(_ name: String, in repositoryName: RepositoryName) throws(BlobError) -> Entry? {
        guard let digest = try? Digest(parsing: name) else { return nil }
        let repository = try registry.repository(repositoryName)
        let blob = BlobName(repository: repositoryName, digest: digest)
        do {
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

    private func blobs(of repositoryName: RepositoryName) throws(BlobError) -> [Entry] {
        let repository = try registry.repository(repositoryName)
        let knownAttributes = self.knownAttributes
        let listed = try repository.blobs.listing { digest, target in
            // A name the kernel already holds, whose link was just read and still holds the
            // same blob: its attributes stand with no system call (an open checks the data file).
            guard let known = knownAttributes(BlobName(repository: repositoryName, digest: digest)), let descriptor = known.descriptor,
                descriptor.digest == target
            else { return nil }
            return BlobDataFile(descriptor: descriptor, modified: known.modified)
        }
        var result: [Entry] = []
        for blob in listed {
            switch blob.file {
            case .success(let data):
                result.append(
                    Entry(
                        name: blob.name.description, node: .blob(BlobName(repository: repositoryName, digest: blob.name)),
                        attributes: NodeAttributes(size: data.descriptor.size, modified: data.modified, descriptor: data.descriptor)))
            case .failure(let error):
                logger.error("skipping a blob that cannot be read", metadata: [
                    "repository": "\(repositoryName)", "digest": "\(blob.name)", "error": "\(error)",
                ])
            }
        }
        return result
    }

    /// A manifest revision in `manifests/`: its revision link, then its data file. A manifest
    /// linked only in `_layers` (registry 2.1.0's layout) is not a revision and is not shown here
    /// (ManifestStore explains why), as the listing does not show it.
    private func manifest(_ name: String, in repositoryName: RepositoryName) throws(BlobError) -> Entry? {
        guard let digest = try? Digest(parsing: name), digest.algorithm == .sha256 else { return nil }
        do {
            let file = try registry.repository(repositoryName).manifests.resolve(digest)
            guard file.linkSet == .manifestRevisions else { return nil }
            return manifestEntry(file, in: repositoryName)
        } catch .unknown {
            return nil
        }
    }

    private func manifests(of repositoryName: RepositoryName) throws(BlobError) -> [Entry] {
        var result: [Entry] = []
        for revision in try registry.repository(repositoryName).manifests.revisions() {
            switch revision.file {
            case .success(let file):
                result.append(manifestEntry(file, in: repositoryName))
            case .failure(let error):
                logger.error("skipping a manifest that cannot be read", metadata: [
                    "repository": "\(repositoryName)", "digest": "\(revision.digest)", "error": "\(error)",
                ])
            }
        }
        return result
    }

    /// A manifest's entry. Its media type is found only when asked for (`user.blobfs.mediatype`
    /// reads the manifest), so that listing thousands of revisions reads none of them.
    private func manifestEntry(_ file: ManifestFile, in repositoryName: RepositoryName) -> Entry {
        Entry(
            name: file.digest.description, node: .manifest(BlobName(repository: repositoryName, digest: file.digest)),
            attributes: NodeAttributes(size: file.size, modified: file.modified, descriptor: Descriptor(digest: file.digest, size: file.size)))
    }

    /// A tag in `tags/`: a symbolic link to the manifest its `current/link` names now (a
    /// dangling one when that manifest is gone), a node of that tag and that manifest. A tag
    /// without a current link is not there.
    private func tag(_ name: String, in repositoryName: RepositoryName, directoryTime: Int64) throws(BlobError) -> Entry? {
        guard let tag = try? Tag(name) else { return nil }
        let digest: Digest?
        do {
            digest = try registry.repository(repositoryName).tags.current(tag)
        } catch .corruptLink(let path, let reason) {
            logger.warning("tag left out", metadata: ["repository": "\(repositoryName)", "tag": "\(tag)", "link": "\(path)", "reason": "\(reason)"])
            return nil
        }
        guard let digest else { return nil }
        return tagEntry(TagLink(tag: tag, digest: digest), in: repositoryName, directoryTime: directoryTime)
    }

    private func tags(of repositoryName: RepositoryName, directoryTime: Int64) throws(BlobError) -> [Entry] {
        try registry.repository(repositoryName).tags.currentLinks().map { tagEntry($0, in: repositoryName, directoryTime: directoryTime) }
    }

    private func tagEntry(_ link: TagLink, in repositoryName: RepositoryName, directoryTime: Int64) -> Entry {
        Entry(
            name: link.tag.value, node: .tag(TagName(repository: repositoryName, tag: link.tag), manifest: link.digest),
            attributes: NodeAttributes(size: Int64(Self.linkTarget(of: link.digest).utf8.count), modified: directoryTime))
    }
}
