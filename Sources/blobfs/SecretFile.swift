import Glibc
import Scrubber

/// A secret of the daemon's user (the Redis password, S3 credentials), read bounded. Whoever can
/// read it has what it guards, and whoever can change it can point the daemon elsewhere, so it is
/// held to the ledger's rules and more: nobody else may read it either.
enum SecretFile {
    /// The file's bytes, at most `limit`. `name` names the file in messages ("the Redis password
    /// file"), `whose` its kind of content ("a password's").
    static func read(_ path: String, name: String, whose: String, limit: Int) throws(CommandFailure) -> [UInt8] {
        func refuse(_ reason: String) -> CommandFailure { CommandFailure("refusing \(name) \(path): \(reason)") }
        func unreadable(_ code: Int32) -> CommandFailure { CommandFailure("cannot read \(name) \(path): \(systemError(code))") }
        // O_NONBLOCK: a FIFO must be refused, not hang the open; O_NOFOLLOW: a link is refused.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            throw code == ELOOP ? refuse("it is a symbolic link") : unreadable(code)
        }
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw unreadable(errno) }
        if let problem = PrivateFile.problem(st, forbidden: 0o066) { throw refuse(problem) }
        guard st.st_size <= limit else { throw refuse("it is \(st.st_size) bytes, more than \(whose) \(limit)") }
        // One byte more than the limit is asked for, so a file that grew since the fstat is seen.
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw unreadable(errno)
            }
            if n == 0 { break }
            filled += n
        }
        guard filled <= limit else { throw refuse("it is more than \(whose) \(limit) bytes") }
        return Array(bytes[..<filled])
    }
}
