import CHiredis
import Glibc

/// One connection to Redis through hiredis. Used by one thread at a time: the pool hands it out.
///
/// Every exchange has a deadline for the whole of it, not per system call: the connect with its
/// AUTH and SELECT must be over within `connectTimeout`, and each command (a pipeline: its write
/// and all its replies) within `ioTimeout`. A connection that failed or timed out is broken for
/// good: it may be out of step with the server, so it refuses further commands.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>
    let address: String
    private let ioTimeout: Double
    private var broken = false

    init(_ configuration: RedisConfiguration) throws(RedisError) {
        let address = configuration.address
        let deadline = RedisDeadline(configuration.connectTimeout)
        // hiredis bounds the TCP connect with poll(2) and this timeout. (Resolving a host name is
        // not bounded: getaddrinfo has no timeout. Addresses resolve at once.)
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeval(configuration.connectTimeout))
        else { throw .unavailable(address: address, reason: "out of memory") }
        guard context.pointee.err == 0 else {
            let reason = RedisRoundTrip.errorText(context)
            redisFree(context)
            if deadline.hasPassed { throw .timedOut(address: address, operation: "connect", seconds: configuration.connectTimeout) }
            throw .unavailable(address: address, reason: reason)
        }
        // From here on a failure runs deinit, which frees the context.
        self.context = context
        self.address = address
        ioTimeout = configuration.ioTimeout
        // Non-blocking from now on: every wait is a poll(2) with what is left of a deadline.
        // Without REDIS_BLOCK, hiredis's reader takes EAGAIN as "nothing yet", not as an error.
        let flags = fcntl(context.pointee.fd, F_GETFL)
        guard flags >= 0, fcntl(context.pointee.fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .unavailable(address: address, reason: "cannot make the socket non-blocking: \(String(cString: strerror(errno)))")
        }
        context.pointee.flags &= ~REDIS_BLOCK

        var setup: [[String]] = []
        if let password = configuration.password { setup.append(["AUTH", password]) }
        if configuration.database != 0 { setup.append(["SELECT", String(configuration.database)]) }
        guard !setup.isEmpty else { return }
        // AUTH and SELECT share the connect's deadline: one round trip, the connect's time.
        let replies = try exchange(setup, by: deadline, seconds: configuration.connectTimeout, operation: "connect")
        for (arguments, reply) in zip(setup, replies) {
            // The command's name only: AUTH's argument is the password.
            if case .error(let message) = reply { throw .unavailable(address: address, reason: "\(arguments[0]): \(message)") }
        }
    }

    deinit { redisFree(context) }

    func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try pipeline([arguments])[0]
    }

    /// Sends every command, then reads every reply: one round trip, over within `ioTimeout`.
    func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        let names = commands.map { $0.first ?? "" }.joined(separator: " ")
        return try exchange(commands, by: RedisDeadline(ioTimeout), seconds: ioTimeout, operation: names)
    }

    private func exchange(_ commands: [[String]], by deadline: RedisDeadline, seconds: Double, operation: String) throws(RedisError)
        -> [RedisReply]
    {
        guard !broken else { throw .unavailable(address: address, reason: "\(operation): the connection failed earlier") }
        do {
            return try RedisRoundTrip.run(context, request: RedisRoundTrip.encode(commands), replies: commands.count, by: deadline)
        } catch {
            broken = true
            switch error {
            case .timedOut: throw .timedOut(address: address, operation: operation, seconds: seconds)
            case .connection(let reason): throw .unavailable(address: address, reason: "\(operation): \(reason)")
            }
        }
    }
}

private func timeval(_ seconds: Double) -> Glibc.timeval {
    let bounded = seconds.isFinite ? min(max(seconds, 0), 86_400) : 86_400
    return Glibc.timeval(tv_sec: Int(bounded), tv_usec: Int((bounded - Double(Int(bounded))) * 1_000_000))
}
