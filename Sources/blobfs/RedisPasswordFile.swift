/// `--redis-password-file`: a secret of the daemon's user, read bounded. Whoever can read it has
/// the registry's cache (and can poison it), so it is held to the ledger's rules and more: nobody
/// else may read it either.
enum RedisPasswordFile {
    /// More than any password: a larger file is the wrong file (or a device that never ends).
    static let limit = 4096

    /// The password: the file's first line, without its line ending.
    static func read(_ path: String) throws(CommandFailure) -> String {
        let bytes = try SecretFile.read(path, name: "the Redis password file", whose: "a password's", limit: limit)
        let firstLine = bytes.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        guard !firstLine.isEmpty else { throw CommandFailure("refusing the Redis password file \(path): its first line is empty: no password") }
        return String(decoding: firstLine, as: UTF8.self)
    }
}
