import CHiredis
import Glibc

/// Why a round trip failed. Either way the connection is unusable: it may hold half a reply, or
/// replies still on their way that would answer the next command.
enum RoundTripFailure: Error {
    case timedOut
    case connection(String)
}

/// One exchange over a hiredis context whose socket is non-blocking: sends `request` and reads
/// until `count` replies are complete, each wait in poll(2) given only what is left until
/// `deadline`. (hiredis's blocking calls wait per read(2), with SO_RCVTIMEO: a server that
/// sends a byte every 0.4 s would keep a 0.5 s timeout from ever firing.)
///
/// Bytes go out with send(MSG_NOSIGNAL), not hiredis's write(2): a server that has closed the
/// connection must give an error, never a SIGPIPE (a library does not own the process's
/// signals). Bytes come in through hiredis's reader, which parses them.
enum RedisRoundTrip {
    static func run(
        _ context: UnsafeMutablePointer<redisContext>, request: [UInt8], replies count: Int, by deadline: RedisDeadline
    ) throws(RoundTripFailure) -> [RedisReply] {
        let fd = context.pointee.fd
        var sent = 0
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        while true {
            try takeReplies(context, into: &replies, upTo: count)
            if replies.count == count && sent == request.count { return replies }
            guard let milliseconds = deadline.remainingMilliseconds else { throw .timedOut }
            let writing = sent < request.count
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .connection("poll: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { continue }  // the deadline is checked at the top
            let events = descriptor.revents
            if events & Int16(POLLNVAL) != 0 { throw .connection("the socket is closed") }
            if writing && events & Int16(POLLOUT | POLLERR | POLLHUP) != 0 {
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    sent += n
                } else if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    throw .connection("send: \(String(cString: strerror(errno)))")
                }
            }
            if events & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                // Reads what is there (EAGAIN is not an error: the context is non-blocking).
                guard redisBufferRead(context) == REDIS_OK else { throw .connection(errorText(context)) }
            }
        }
    }

    /// The replies hiredis has parsed completely so far.
    private static func takeReplies(
        _ context: UnsafeMutablePointer<redisContext>, into replies: inout [RedisReply], upTo count: Int
    ) throws(RoundTripFailure) {
        while replies.count < count {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { throw .connection(errorText(context)) }
            guard let raw else { return }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(RedisReply(reply))
            freeReplyObject(reply)
        }
    }

    /// The request: each command as a RESP array of bulk strings, all in one buffer.
    static func encode(_ commands: [[String]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for arguments in commands {
            bytes += Array("*\(arguments.count)\r\n".utf8)
            for argument in arguments {
                let utf8 = Array(argument.utf8)
                bytes += Array("$\(utf8.count)\r\n".utf8)
                bytes += utf8
                bytes += [13, 10]
            }
        }
        return bytes
    }

    static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
