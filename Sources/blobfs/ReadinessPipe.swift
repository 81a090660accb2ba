import Glibc

/// How a mount started in the background (the mount.fuse form) tells the parent waiting on a
/// pipe that it is up: one NUL byte, then the pipe is closed. Until then the process's standard
/// error goes into the same pipe, so the parent relays every message, libfuse's included, and
/// prints them if the pipe closes without the byte.
final class ReadinessPipe {
    static let readyByte: UInt8 = 0
    private var fd: Int32?

    /// Takes over the pipe's write end and keeps it from leaking into anything libfuse spawns
    /// (`fusermount3` for `auto_unmount` outlives the mount and would hold the pipe open).
    init(fd: Int32) {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
    }

    /// The mount is up. Standard error must already point elsewhere.
    func ready() {
        guard let fd else { return }
        var byte = Self.readyByte
        while write(fd, &byte, 1) < 0 && errno == EINTR {}
        close(fd)
        self.fd = nil
    }
}
