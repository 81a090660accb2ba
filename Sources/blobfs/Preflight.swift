import BlobFS
import Glibc
import Logging
import Storage
import StorageDriver

/// The checks made before anything is read or mounted, each failing with one clear line.
enum Preflight {
    /// A registry store: its root (absolute, links resolved) and a driver over it.
    struct Store {
        let root: String
        let driver: FilesystemDriver
        /// An empty directory accepted for a read-write mount: `docker/registry/v2` is still to
        /// be created (`create(_:)`), once every other check has passed.
        var isFresh = false
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
        do {
            try store.driver.createDirectory(DriverPath(PathMapper.rootPrefix))
        } catch {
            throw CommandFailure("cannot create docker/registry/v2 in \(store.root): \(error)")
        }
        logger.info("\(store.root) was empty: created docker/registry/v2 in it, a new store to restore into")
    }

    /// The mountpoint, absolute with links resolved: an existing directory that is not a mount
    /// point already, and neither inside the store nor above it.
    static func mountpoint(_ path: String, store: Store) throws(CommandFailure) -> String {
        var info = Glibc.stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            switch code {
            case ENOENT: throw CommandFailure(MountError.mountpointMissing(path).description)
            case ENOTCONN: throw deadMount(path)
            default: throw CommandFailure("cannot use mountpoint \(path): \(systemError(code))")
            }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw CommandFailure(MountError.mountpointNotADirectory(path).description) }
        let resolved = try resolve(path, what: "mountpoint")
        if MountTable.isMountpoint(resolved) {
            throw isDeadFuseMount(resolved) ? deadMount(path) : CommandFailure(MountError.mountpointBusy(path).description)
        }
        if resolved == store.root || store.root.hasPrefix(resolved == "/" ? "/" : resolved + "/") {
            throw CommandFailure(
                "mountpoint \(path) would hide the store \(store.root) (from the registry too): choose another directory")
        }
        if resolved.hasPrefix(store.root + "/docker/") || resolved == store.root + "/docker" {
            throw CommandFailure("mountpoint \(path) is inside the store \(store.root): blobfs would read its own mount")
        }
        return resolved
    }

    /// A FUSE mount whose daemon is gone: stat may still answer, but reading the directory fails.
    private static func isDeadFuseMount(_ path: String) -> Bool {
        guard let directory = opendir(path) else { return errno == ENOTCONN }
        closedir(directory)
        return false
    }

    private static func deadMount(_ path: String) -> CommandFailure {
        CommandFailure(
            "mountpoint \(path) is a dead FUSE mount (transport endpoint is not connected): "
                + "unmount it with fusermount3 -u \(path)")
    }

    /// The FUSE device must exist (the `fuse` module is loaded, or the container passes it in).
    static func fuseDevice() throws(CommandFailure) {
        var info = Glibc.stat()
        guard stat("/dev/fuse", &info) == 0, info.st_mode & S_IFMT == S_IFCHR else {
            throw CommandFailure(MountError.noFuseDevice.description)
        }
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
