import Glibc
import Scrubber

/// `--redis-password-file`: a secret of the daemon's user, read bounded. Whoever can read it has
/// the registry's cache (and can poison it), so it is held to the ledger's rules and more: nobody
/// else may read it either.
enum RedisPasswordFile {
    /// More than any password: a larger file is the wrong file (or a device that never ends).
    static let limit = 4096

    /// The password: the file's first line, without its line ending.
    static func read(_ path: String) throws(CommandFailure) -> String {
        func refuse(_ reason: String) -> CommandFailure { CommandFailure("refusing the Redis password file \(path): \(reason)") }
        // O_NONBLOCK: a FIFO must be refused, not hang the open; O_NOFOLLOW: a link is refused.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            throw code == ELOOP ? refuse("it is a symbolic link") : CommandFailure("cannot read the Redis password file \(path): \(systemError(code))")
        }
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw CommandFailure("cannot read the Redis password file \(path): \(systemError(errno))") }
        if let problem = PrivateFile.problem(st, forbidden: 0o066) { throw refuse(problem) }
        guard st.st_size <= limit else { throw refuse("it is \(st.st_size) bytes, more than a password's \(limit)") }
        // One byte more than the limit is asked for, so a file that grew since the fstat is seen.
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CommandFailure("cannot read the Redis password file \(path): \(systemError(errno))")
            }
            if n == 0 { break }
            filled += n
        }
        guard filled <= limit else { throw refuse("it is more than a password's \(limit) bytes") }
        let firstLine = bytes[..<filled].prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        guard !firstLine.isEmpty else { throw refuse("its first line is empty: no password") }
        return String(decoding: firstLine, as: UTF8.self)
    }
}
