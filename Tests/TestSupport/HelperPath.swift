import Foundation
import Glibc

/// Makes the `blobfs` under test reachable by `mount -t fuse.blobfs`.
///
/// mount(8) is setuid root and removes PATH from the environment before it runs
/// /sbin/mount.fuse, whose `/bin/sh -c 'blobfs …'` then searches only the shell's built-in default
/// (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin). A PATH given to `mount` never
/// reaches it. So for the duration of `body` the binary under test is linked as
/// /usr/local/sbin/blobfs (first in that default, as an install would put it), under a lock so that
/// two test processes never fight over it, and the link is removed afterwards.
public enum HelperPath {
    public static let link = "/usr/local/sbin/blobfs"
    static let lockPath = "/run/lock/blobfs-tests-mount-helper.lock"

    public static func withBlobfsInstalled<T>(_ body: () throws -> T) throws -> T {
        let binary = try BlobfsExecutable.path()
        let lock = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw TestSupportError("cannot open \(lockPath): \(Errno(errno))") }
        defer { close(lock) }
        guard MountTable.waitUntil(timeout: 120, { flock(lock, LOCK_EX | LOCK_NB) == 0 }) else {
            throw TestSupportError("another test process held \(lockPath) for 2 minutes")
        }
        defer { flock(lock, LOCK_UN) }

        var info = Glibc.stat()
        if lstat(link, &info) == 0 {
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? ""
            // A link into a SwiftPM build directory can only be a leftover of this helper (a run
            // that was killed); anything else is a real installation we must not touch.
            guard (info.st_mode & S_IFMT) == S_IFLNK, target.contains("/.build") else {
                throw TestSupportError(
                    "\(link) exists (\(target.isEmpty ? "an installed file" : "a link to \(target)")): `mount -t fuse.blobfs` would run it "
                        + "instead of the build under test. Remove it to run this test.")
            }
            unlink(link)
        }
        try? FileManager.default.createDirectory(atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard symlink(binary, link) == 0 else { throw TestSupportError("symlink \(link) -> \(binary): \(Errno(errno))") }
        defer {
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == binary { unlink(link) }
        }
        return try body()
    }
}
