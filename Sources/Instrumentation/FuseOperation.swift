/// The FUSE operations blobfs answers, as the metrics' `operation` label names them. An enum and
/// not a string so that a request finds its metric objects by index, with no hashing or
/// allocation per request (docs/architecture.md, "Metrics").
public enum FuseOperation: Int, CaseIterable, Sendable, CustomStringConvertible {
    case lookup, forget, forgetMulti, getattr, readlink, setattr, open, read, release, opendir, readdir, readdirplus
    case releasedir, statfs, getxattr, listxattr, flush, create, mknod, symlink, write, rename, link, unlink, mkdir, rmdir
    case setxattr, removexattr

    /// libfuse's name of the operation (`forget_multi`, not `forgetMulti`): the label value, and
    /// the operation named in the log line of a request dropped without a reply.
    public var description: String {
        switch self {
        case .lookup: "lookup"
        case .forget: "forget"
        case .forgetMulti: "forget_multi"
        case .getattr: "getattr"
        case .readlink: "readlink"
        case .setattr: "setattr"
        case .open: "open"
        case .read: "read"
        case .release: "release"
        case .opendir: "opendir"
        case .readdir: "readdir"
        case .readdirplus: "readdirplus"
        case .releasedir: "releasedir"
        case .statfs: "statfs"
        case .getxattr: "getxattr"
        case .listxattr: "listxattr"
        case .setxattr: "setxattr"
        case .removexattr: "removexattr"
        case .flush: "flush"
        case .create: "create"
        case .mknod: "mknod"
        case .symlink: "symlink"
        case .write: "write"
        case .rename: "rename"
        case .link: "link"
        case .unlink: "unlink"
        case .mkdir: "mkdir"
        case .rmdir: "rmdir"
        }
    }
}
