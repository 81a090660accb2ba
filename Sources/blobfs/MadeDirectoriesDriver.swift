import StorageDriver
import Synchronization

/// A read-write mount's driver over a store whose directories are only key prefixes (S3): the
/// directories this mount made (`mkdir` of a repository, its `blobs/`, `manifests/`, `tags/`)
/// exist for it until their first file gives them keys, as they would on a filesystem. Without
/// this a restore fails at its first `mkdir`: S3 writes nothing for a directory (no marker
/// objects, as the registry's own driver), so the directory is gone when the mount looks it up
/// again, and `rsync`/`cp -a` make every directory before they write into it.
///
/// Only this process remembers them (a directory left empty is not in the bucket, and another
/// mount or the registry never sees it, exactly as with the registry's driver). Everything else
/// goes to the store's driver unchanged.
final class MadeDirectoriesDriver: StorageDriver {
    let store: any StorageDriver
    /// The directories made here. Only ever grows, by one path a `mkdir`: a restore makes a few
    /// per repository. A leaf lock: no driver call runs under it.
    private let made = Mutex<Set<DriverPath>>([])

    init(_ store: any StorageDriver) {
        self.store = store
    }

    var name: String { store.name }
    var owner: StorageOwner? { store.owner }
    var requestConcurrency: RequestConcurrency { store.requestConcurrency }

    func capacity() throws(StorageDriverError) -> StorageCapacity? { try store.capacity() }

    func createDirectory(_ path: DriverPath) throws(StorageDriverError) {
        try store.createDirectory(path)
        _ = made.withLock { $0.insert(path) }
    }

    /// The store's answer; for a path it does not have, a directory when this mount made it or
    /// something below it.
    func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        do {
            return try store.stat(path)
        } catch .pathNotFound {
            guard isMade(path) else { throw .pathNotFound(path.value) }
            return FileInfo(path: path, kind: .directory, size: 0, modified: 0)
        }
    }

    /// The store's children and the made ones, sorted.
    func list(_ path: DriverPath) throws(StorageDriverError) -> [String] {
        let madeChildren = madeChildren(of: path)
        do {
            let listed = try store.list(path)
            return madeChildren.isEmpty ? listed : Set(listed).union(madeChildren).sorted()
        } catch .pathNotFound {
            guard isMade(path) else { throw .pathNotFound(path.value) }
            return madeChildren.sorted()
        }
    }

    // `enumerateNames` is the protocol's own, over `list`: the made directories are in its batches.

    func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] { try store.getContent(path, limit: limit) }
    func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) { try store.putContent(path, content) }
    func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader { try store.reader(path) }
    func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter { try store.writer(path, append: append) }
    func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) { try store.move(from: source, to: destination) }
    func delete(_ path: DriverPath) throws(StorageDriverError) { try store.delete(path) }
    func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        try store.walk(path, visit)
    }
    func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory { try store.directory(path) }

    /// Whether `path` was made here, or lies above a path made here.
    private func isMade(_ path: DriverPath) -> Bool {
        made.withLock { made in made.contains(path) || made.contains { $0.isWithin(path) } }
    }

    /// The names right below `path` on the way to the directories made here.
    private func madeChildren(of path: DriverPath) -> Set<String> {
        let depth = path.components.count
        return made.withLock { made in
            Set(made.compactMap { $0 != path && $0.isWithin(path) ? String($0.components[depth]) : nil })
        }
    }
}
