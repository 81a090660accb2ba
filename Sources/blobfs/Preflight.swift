import BlobFS
import Glibc
import Logging
import Storage
import StorageDriver

/// The checks made before anything is read or mounted, each failing with one clear line.
enum Preflight {
    /// A registry store: its root (a directory, absolute, links resolved; or `s3://<bucket>/<root>`)
    /// and a driver over it.
    struct Store {
        let root: String
        let driver: any StorageDriver
        /// An empty directory (or an empty prefix of a bucket) accepted for a read-write mount:
        /// `docker/registry/v2` is still to be created (`create(_:)`), once every other check has passed.
        var isFresh = false
        /// Whether the store is a directory of this machine (its files can be opened by the kernel:
        /// passthrough, the mountpoint's place relative to it); false for a bucket.
        var isLocal = true
    }

    /// The store at `path`: an existing directory with `docker/registry/v2` beneath it (an empty
    /// store with nothing but that directory is fine). With `acceptsEmpty` (a read-write mount),
    /// an empty directory is a fresh store for a restore; a directory with other things in it and
    /// no `docker/registry/v2` is still refused: it is most likely the wrong directory.
    static func store(_ path: String, acceptsEmpty: Bool = false) throws(CommandFailure) -> Store {
        var info = Glibc.stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            throw CommandFailure(
                code == ENOENT ? "storage root \(path) does not exist" : "cannot use storage root \(path): \(systemError(code))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw CommandFailure("storage root \(path) is not a directory") }
        let root = try resolve(path, what: "storage root")
        let driver: FilesystemDriver
        do {
            driver = try FilesystemDriver(root: root)
        } catch {
            throw CommandFailure("cannot open storage root \(path): \(error)")
        }
        func notAStore() -> CommandFailure {
            let empty = (try? isEmptyDirectory(root)) == true
            return CommandFailure(
                "\(path) is not a registry store: it has no docker/registry/v2 directory"
                    + (empty
                        ? " (it is empty: a registry creates that directory when it first stores a blob, and so does a --read-write mount, to restore into)" : suggestion(for: root))
            )
        }
        do {
            guard try driver.stat(DriverPath(PathMapper.rootPrefix)).isDirectory else { throw notAStore() }
        } catch StorageDriverError.pathNotFound {
            if acceptsEmpty, (try? isEmptyDirectory(root)) == true { return Store(root: root, driver: driver, isFresh: true) }
            throw notAStore()
        } catch StorageDriverError.symlinkRefused {
            throw CommandFailure(
                "\(path) is not usable: docker/registry/v2 goes through a symbolic link, which blobfs never follows "
                    + "inside a store; give the directory the link points to"
            )
        } catch {
            throw CommandFailure(error)
        }
        return Store(root: root, driver: driver)
    }

    /// Makes a fresh store a store: `docker/registry/v2`, owned as everything the driver creates
    /// (by the owner of the directory it is created in), and one log line saying so.
    static func create(_ store: Store, logger: Logger) throws(CommandFailure) {
        guard store.isLocal else {
            // A bucket has no directories: docker/registry/v2 appears with the first blob written.
            logger.info("\(store.root) is empty: a new store to restore into")
            return
        }
        do {
            try store.driver.createDirectory(DriverPath(PathMapper.rootPrefix))
        } catch {
            throw CommandFailure("cannot create docker/registry/v2 in \(store.root): \(error)")
        }
        logger.info("\(store.root) was empty: created docker/registry/v2 in it, a new store to restore into")
    }

    /// The mountpoint, by the one rule of `Mountpoint.check`.
    static func mountpoint(_ path: String, store: Store) throws(CommandFailure) -> String {
        do {
            return try Mountpoint.check(path, storageRoot: store.isLocal ? store.root : nil)
        } catch {
            throw CommandFailure(error.description)
        }
    }

    /// /dev/fuse, by `Mountpoint.checkFuseDevice`.
    static func fuseDevice() throws(CommandFailure) {
        do { try Mountpoint.checkFuseDevice() } catch { throw CommandFailure(error.description) }
    }

    /// Whether a directory has no entries besides `.` and `..`.
    static func isEmptyDirectory(_ path: String) throws(CommandFailure) -> Bool {
        guard let directory = opendir(path) else { throw CommandFailure("cannot read \(path): \(systemError(errno))") }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { return false }
        }
        return true
    }

    /// realpath(3).
    static func resolve(_ path: String, what: String) throws(CommandFailure) -> String {
        guard let resolved = realpath(path, nil) else {
            throw CommandFailure("cannot resolve \(what) \(path): \(systemError(errno))")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// A hint for a path given one level too deep, e.g. `/var/lib/docker-registry/docker/registry/v2`.
    private static func suggestion(for root: String) -> String {
        for suffix in ["/docker/registry/v2", "/docker/registry", "/docker"] where root.hasSuffix(suffix) {
            let parent = String(root.dropLast(suffix.count))
            return " (give the directory that holds docker/: \(parent.isEmpty ? "/" : parent))"
        }
        return ""
    }
}
