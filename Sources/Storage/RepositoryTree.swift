import Distribution
import StorageDriver

/// The tree of repository names as the disk holds it: which names are repositories, and which
/// components lie below a name prefix. One rule for each, so that a listing, a lookup, the
/// catalog and the scrubber agree, and so that no caller above Storage needs the layout.
extension Registry {
    /// Whether `name` is a repository: `repositories/<name>/_layers` is a directory, as the
    /// registry's catalog and GC recognise repositories (docs/architecture.md, "What is on
    /// disk"). A file or anything else named `_layers` makes no repository; neither does a name
    /// with only `_manifests`. Absent, or a symbolic link, is no; a stat that fails otherwise
    /// (unreadable, an S3 outage) is that error, never a "no" a kernel would remember as ENOENT.
    public func isRepository(_ name: RepositoryName) throws(BlobError) -> Bool {
        try isDirectory(PathMapper.path(.layers(name)))
    }

    /// Whether `name` is a directory under `repositories/`: a repository, or a prefix of
    /// longer names (`team` of `team/app`), or both.
    public func isNamePrefix(_ name: RepositoryName) throws(BlobError) -> Bool {
        try isDirectory(PathMapper.path(.repository(name)))
    }

    /// The components that extend `prefix` (nil: the top level) to a longer name on disk, sorted:
    /// the directories under `repositories/<prefix>` whose names are valid name components.
    /// `_layers`, `_uploads` and `_manifests` are not components; neither is a file or a
    /// symbolic link. A prefix that is not on disk has none.
    public func childComponents(of prefix: RepositoryName?) throws(BlobError) -> [String] {
        let directory = prefix.map { PathMapper.path(.repository($0)) } ?? PathMapper.path(.repositoriesRoot)
        let children: [String]
        do throws(StorageDriverError) {
            children = try driver.list(directory)
        } catch .pathNotFound {
            return []
        } catch {
            throw error.blobError
        }
        var components: [String] = []
        for child in children {
            guard RepositoryName.problem(inComponent: child.utf8) == nil, let path = try? directory.appending(child) else { continue }
            if try isDirectory(path) { components.append(child) }
        }
        return components
    }

    /// Whether repository `name` has manifest revisions to show: `_manifests/revisions` is a
    /// directory (a push made it; so does `createManifestsDirectory`).
    public func hasManifests(_ name: RepositoryName) throws(BlobError) -> Bool {
        try isDirectory(PathMapper.path(.manifestRevisions(name)))
    }

    /// Whether repository `name` has tags to show: `_manifests/tags` is a directory.
    public func hasTags(_ name: RepositoryName) throws(BlobError) -> Bool {
        try isDirectory(PathMapper.path(.manifestTags(name)))
    }

    /// Makes `name` a repository with a `_manifests/revisions` directory (a restore's
    /// `mkdir <name>/manifests`), as the registry's first manifest push does. Idempotent.
    public func createManifestsDirectory(_ name: RepositoryName) throws(BlobError) {
        try createRepository(name)
        try driverCall { () throws(StorageDriverError) in try driver.createDirectory(PathMapper.path(.manifestRevisions(name))) }
    }

    /// Makes `name` a repository with a `_manifests/tags` directory (`mkdir <name>/tags`). Idempotent.
    public func createTagsDirectory(_ name: RepositoryName) throws(BlobError) {
        try createRepository(name)
        try driverCall { () throws(StorageDriverError) in try driver.createDirectory(PathMapper.path(.manifestTags(name))) }
    }

    private func isDirectory(_ path: DriverPath) throws(BlobError) -> Bool {
        do throws(StorageDriverError) {
            return try driver.stat(path).isDirectory
        } catch .pathNotFound, .symlinkRefused {
            return false
        } catch {
            throw error.blobError
        }
    }
}
