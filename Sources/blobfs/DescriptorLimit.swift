import Glibc

/// The daemon's open-file limit, raised from the soft limit to the hard one at start. A mount
/// holds descriptors by design — up to 256 held directories in the filesystem driver, one per
/// open blob handle and per passthrough backing file, the verification ledger, the blob cache's
/// files — and the soft limit a shell or systemd hands out is often 1,024 while the hard one is
/// far larger (systemd's default hard limit is 524,288). Running out shows as EMFILE in the
/// middle of a lookup or an open; what a daemon is allowed, it should use.
enum DescriptorLimit {
    /// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
    @discardableResult
    static func raiseToHard() -> rlim_t {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return raised.rlim_cur }
        }
        return limit.rlim_cur
    }
}
