import CHiredis

/// One Redis reply, copied out of hiredis's reply object.
enum RedisReply: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case status(String)
    case error(String)
    case null
    case array([RedisReply])

    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING: self = .string(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_STATUS: self = .status(String(cString: r.str))
        case REDIS_REPLY_ERROR: self = .error(String(cString: r.str))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY: self = .array((0..<r.elements).map { RedisReply(r.element[$0]!) })
        default: self = .null
        }
    }

    /// The string value, nil for a nil reply.
    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var integer: Int64? {
        if case .integer(let n) = self { return n }
        return nil
    }
}
