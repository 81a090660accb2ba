import Glibc

/// The checks for a file that only the daemon's user may control: the verification ledger
/// (whoever can write it can make a mount serve unverified bytes) and the Redis password file
/// (whoever can read it has the cache). One set of rules, so both are refused for the same reasons
/// in the same words.
public enum PrivateFile {
    /// Why the file `st` describes is not the daemon's user's own, nil when it is: it must be a
    /// regular file of the effective user with none of `forbidden` (group and other bits) set.
    public static func problem(_ st: Glibc.stat, forbidden: mode_t) -> String? {
        if st.st_mode & S_IFMT != S_IFREG { return "it is not a regular file" }
        if st.st_uid != geteuid() { return "it belongs to uid \(st.st_uid), not to the daemon's uid \(geteuid())" }
        let granted = st.st_mode & forbidden
        guard granted != 0 else { return nil }
        let mode = String(st.st_mode & 0o777, radix: 8)
        let reads = granted & 0o044 != 0
        let writes = granted & 0o022 != 0
        let what = reads && writes ? "read and write" : reads ? "read" : "write"
        return "others can \(what) it (mode \(mode); chmod go-\(forbidden & 0o044 != 0 ? "rw" : "w"))"
    }

    /// Why others could replace or remove the file at `path` through its directory, nil when they
    /// cannot: a directory everyone can write without the sticky bit, or one that belongs to
    /// another user than the daemon's (root's are fine: root can do anything anyway).
    public static func directoryProblem(containing path: String) -> String? {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        var st = Glibc.stat()
        guard stat(directory, &st) == 0 else { return nil }  // the file's own open reports it
        if st.st_mode & 0o002 != 0 && st.st_mode & S_ISVTX == 0 {
            return "its directory \(directory) is writable by everyone without the sticky bit, so others can replace it"
        }
        if st.st_uid != geteuid() && st.st_uid != 0 {
            return "its directory \(directory) belongs to uid \(st.st_uid), who can replace it (the daemon's uid is \(geteuid()))"
        }
        return nil
    }
}
