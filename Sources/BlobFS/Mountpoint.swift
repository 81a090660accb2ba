import Glibc

/// Where a mount may go, decided once: the command line checks it before it starts (so that a
/// mistake is one line on the terminal) and `FuseSession` relies on the same rule.
public enum Mountpoint {
    /// The mountpoint, absolute with links resolved: an existing directory that is not a mount
    /// point already (a dead FUSE mount is named as such), and, when the store is given, neither
    /// the store, nor above it (the mount would hide it, from the registry too), nor inside it
    /// (blobfs would read its own mount).
    public static func check(_ path: String, storageRoot: String?) throws(MountError) -> String {
        var info = Glibc.stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            switch code {
            case ENOENT: throw .mountpointMissing(path)
            case ENOTCONN: throw .mountpointDead(path)
            default: throw .mountpointUnusable(path, reason: String(cString: strerror(code)))
            }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .mountpointNotADirectory(path) }
        guard let resolvedPointer = realpath(path, nil) else {
            throw .mountpointUnusable(path, reason: String(cString: strerror(errno)))
        }
        let resolved = String(cString: resolvedPointer)
        free(resolvedPointer)
        if MountTable.isMountpoint(resolved) {
            throw isDeadFuseMount(resolved) ? .mountpointDead(path) : .mountpointBusy(path)
        }
        if let store = storageRoot {
            if resolved == store || store.hasPrefix(resolved == "/" ? "/" : resolved + "/") {
                throw .mountpointHidesStore(path, store: store)
            }
            if resolved.hasPrefix(store + "/docker/") || resolved == store + "/docker" {
                throw .mountpointInsideStore(path, store: store)
            }
        }
        return resolved
    }

    /// The FUSE device must exist (the `fuse` module is loaded, or the container passes it in).
    /// Only its absence is fatal: without permission to open it, libfuse falls back to the setuid
    /// fusermount3 and says why if that fails too.
    public static func checkFuseDevice() throws(MountError) {
        var info = Glibc.stat()
        guard stat("/dev/fuse", &info) == 0, info.st_mode & S_IFMT == S_IFCHR else { throw .noFuseDevice }
    }

    /// A FUSE mount whose daemon is gone: stat may still answer, but reading the directory fails.
    private static func isDeadFuseMount(_ path: String) -> Bool {
        guard let directory = opendir(path) else { return errno == ENOTCONN }
        closedir(directory)
        return false
    }
}
