import CFuse
import Glibc

/// A mounted FUSE session serving a `BlobFileSystem` on libfuse's worker threads.
public final class FuseSession {
    public let fileSystem: BlobFileSystem
    public let mountpoint: String

    /// Creates the session and mounts it; throws `MountError` with a one-line reason.
    public init(fileSystem: BlobFileSystem, mountpoint: String) throws {
        self.fileSystem = fileSystem
        self.mountpoint = mountpoint
        fatalError("not yet")
    }

    /// Serves requests until the filesystem is unmounted or the process gets SIGINT, SIGTERM or
    /// SIGHUP; then unmounts. Returns normally on a clean stop.
    public func run() throws {}
}
