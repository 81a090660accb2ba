import CHiredis
import Glibc

/// One connection to Redis through hiredis, with connect and read/write timeouts. Used by one
/// thread at a time: the pool hands it out.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>
    let address: String

    init(_ configuration: RedisConfiguration) throws(RedisError) {
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeval(configuration.connectTimeout))
        else { throw .unavailable(address: configuration.address, reason: "out of memory") }
        guard context.pointee.err == 0 else {
            let reason = Self.errorText(context)
            redisFree(context)
            throw .unavailable(address: configuration.address, reason: reason)
        }
        // From here on a failure runs deinit, which frees the context.
        self.context = context
        address = configuration.address
        _ = redisSetTimeout(context, timeval(configuration.ioTimeout))
        if let password = configuration.password {
            try expectOK(try command(["AUTH", password]), "AUTH")
        }
        if configuration.database != 0 {
            try expectOK(try command(["SELECT", String(configuration.database)]), "SELECT")
        }
    }

    deinit { redisFree(context) }

    func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try pipeline([arguments])[0]
    }

    /// Sends every command, then reads every reply: one round trip.
    func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        for arguments in commands {
            let status = Self.withArgv(arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { throw connectionFailure(arguments) }
        }
        var replies: [RedisReply] = []
        for arguments in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw connectionFailure(arguments) }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(RedisReply(reply))
            freeReplyObject(reply)
        }
        return replies
    }

    private func expectOK(_ reply: RedisReply, _ what: String) throws(RedisError) {
        if case .error(let message) = reply { throw .unavailable(address: address, reason: "\(what): \(message)") }
    }

    private func connectionFailure(_ arguments: [String]) -> RedisError {
        .unavailable(address: address, reason: "\(arguments.first ?? "command"): \(Self.errorText(context))")
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func withArgv<T>(_ arguments: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T) -> T {
        let copies = arguments.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        var argv = copies.map { UnsafePointer<CChar>($0) }
        let lengths = arguments.map { $0.utf8.count }
        return argv.withUnsafeMutableBufferPointer { argvBuffer in
            lengths.withUnsafeBufferPointer { lengthBuffer in
                body(Int32(arguments.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
            }
        }
    }
}

private func timeval(_ seconds: Double) -> Glibc.timeval {
    Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
}
