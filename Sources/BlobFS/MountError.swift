/// Why a mount could not start; each a one-line message for the command line.
public enum MountError: Error, Sendable, CustomStringConvertible {
    case mountpointMissing(String)
    case mountpointNotADirectory(String)
    case mountpointBusy(String)
    case mountpointDead(String)
    case mountpointUnusable(String, reason: String)
    case mountpointHidesStore(String, store: String)
    case mountpointInsideStore(String, store: String)
    case noFuseDevice
    case sessionFailed(String)
    case mountFailed(String)

    public var description: String {
        switch self {
        case .mountpointMissing(let p): "mountpoint \(p) does not exist"
        case .mountpointNotADirectory(let p): "mountpoint \(p) is not a directory"
        case .mountpointBusy(let p): "mountpoint \(p) is already a mountpoint (busy)"
        case .mountpointDead(let p):
            "mountpoint \(p) is a dead FUSE mount (transport endpoint is not connected): unmount it with fusermount3 -u \(p)"
        case .mountpointUnusable(let p, let reason): "cannot use mountpoint \(p): \(reason)"
        case .mountpointHidesStore(let p, _):
            "mountpoint \(p) would hide the store \(storeOf(self)) (from the registry too): choose another directory"
        case .mountpointInsideStore(let p, _): "mountpoint \(p) is inside the store \(storeOf(self)): blobfs would read its own mount"
        case .noFuseDevice: "/dev/fuse is missing: load the fuse module (modprobe fuse) or run where FUSE is available"
        case .sessionFailed(let why): "could not create the FUSE session: \(why)"
        case .mountFailed(let p): "could not mount at \(p) (see the messages above)"
        }
    }

    private func storeOf(_ error: MountError) -> String {
        switch error {
        case .mountpointHidesStore(_, let store), .mountpointInsideStore(_, let store): store
        default: ""
        }
    }
}
