/// Why a mount could not start; each a one-line message for the command line.
public enum MountError: Error, Sendable, CustomStringConvertible {
    case mountpointMissing(String)
    case mountpointNotADirectory(String)
    case mountpointBusy(String)
    case noFuseDevice
    case sessionFailed(String)
    case mountFailed(String)

    public var description: String {
        switch self {
        case .mountpointMissing(let p): "mountpoint \(p) does not exist"
        case .mountpointNotADirectory(let p): "mountpoint \(p) is not a directory"
        case .mountpointBusy(let p): "mountpoint \(p) is already a mountpoint (busy)"
        case .noFuseDevice: "/dev/fuse is missing: load the fuse module (modprobe fuse) or run where FUSE is available"
        case .sessionFailed(let why): "could not create the FUSE session: \(why)"
        case .mountFailed(let p): "could not mount at \(p) (see the messages above)"
        }
    }
}
