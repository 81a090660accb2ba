import Glibc

/// Whether this daemon's own mount answers, asked from the daemon itself through the kernel:
/// for the service manager's readiness and watchdog notifications. Call it from a thread that is
/// no libfuse worker and that may block: a wedged mount blocks the probe, which is the point.
public struct MountProbe: Sendable {
    public let mountpoint: String
    /// The FUSE mount's device, as `stat` shows it on the mount's root.
    public let device: UInt64

    /// The probe of the mount at `mountpoint` once it answers: the path shows the device
    /// /proc/self/mountinfo lists for the newest mount there (so the FUSE mount is in place, not
    /// the directory under it), and a request went through the loop and back. Nil otherwise.
    public static func answering(at mountpoint: String) -> MountProbe? {
        var info = Glibc.stat()
        guard fstatat(AT_FDCWD, mountpoint, &info, 0) == 0,
            let listed = MountTable.device(of: mountpoint), listed == Self.majorMinor(UInt64(info.st_dev))
        else { return nil }
        let probe = MountProbe(mountpoint: mountpoint, device: UInt64(info.st_dev))
        return probe.answers() ? probe : nil
    }

    /// Whether the mount is still this one and answers a request now: an open of its root is a
    /// round trip through the FUSE loop that the kernel never answers from its caches (OPENDIR,
    /// answered from memory: the root's entries touch no storage; the close's RELEASEDIR does
    /// not wait for the daemon). A stat alone could be answered from the kernel's attribute cache.
    public func answers() -> Bool {
        let fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = Glibc.stat()
        return fstat(fd, &info) == 0 && UInt64(info.st_dev) == device
    }

    /// `major:minor` as mountinfo writes a device (glibc's encoding of dev_t; its macros do not import).
    static func majorMinor(_ device: UInt64) -> String {
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & 0xffff_f000)
        let minor = (device & 0xff) | ((device >> 12) & 0xffff_ff00)
        return "\(major):\(minor)"
    }
}
