import Foundation
import Glibc
import Synchronization

/// A scripted, misbehaving "Redis" on 127.0.0.1, in the test process: for tests of how a client
/// copes with a server that is slow, silent or never finishes a reply. It counts what it saw
/// (connections, requests, requests waiting at once), so that tests can check how often the
/// client touched the network instead of timing it.
public final class FakeRedisServer: Sendable {
    public enum Behaviour: Sendable {
        /// Answers each request with the header of a 100000-byte string, `$100000\r\n`, then one
        /// byte every `interval` seconds, for as long as the client listens.
        case trickle(interval: Double)
        /// Accepts, reads, and never answers.
        case silent
        /// Answers every command as a miss (SISMEMBER `:0`, HMGET an array of nils, HGET and GET
        /// a nil, anything else `+OK`), each batch of commands `delay` seconds after it arrived.
        case misses(delay: Double)
    }

    /// What the server saw so far.
    public struct Counters: Sendable, Hashable {
        /// Connections accepted.
        public var connections = 0
        /// Reads that brought bytes: for a client that sends one pipeline per round trip, its
        /// round trips.
        public var requests = 0
        /// Batches of commands waiting for their answer (`misses` only), now and at most.
        public var pending = 0
        public var maximumPending = 0
    }

    private struct State {
        var counters = Counters()
        var stopping = false
        var liveThreads = 0
    }

    public let port: Int
    public let behaviour: Behaviour
    private let listener: Int32
    private let state = Mutex(State())

    public init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket(): \(Errno(errno))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 128) == 0 else {
            let error = Errno(errno)
            close(fd)
            throw TestSupportError("cannot listen on 127.0.0.1: \(error)")
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        startThread { $0.acceptLoop() }
    }

    deinit { stop() }

    /// `127.0.0.1:<port>`.
    public var address: String { "127.0.0.1:\(port)" }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Polls (every 5 ms) until `condition` holds of the counters, for at most `timeout` seconds;
    /// whether it came to hold.
    public func wait(timeout: Double, until condition: (Counters) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if condition(counters) { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    /// Closes every connection and the listening socket, and returns once every thread of the
    /// server has ended (each notices within 50 ms). Idempotent.
    public func stop() {
        let first = state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        if first { shutdown(listener, Int32(SHUT_RDWR)) }
        let deadline = Date().addingTimeInterval(10)
        while state.withLock({ $0.liveThreads }) > 0 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    // MARK: - Threads

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func startThread(_ body: @escaping @Sendable (FakeRedisServer) -> Void) {
        state.withLock { $0.liveThreads += 1 }
        let thread = Thread { [self] in
            body(self)
            state.withLock { $0.liveThreads -= 1 }
        }
        thread.start()
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !stopping {
            guard Self.waitReadable(listener, milliseconds: 50) else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            state.withLock { $0.counters.connections += 1 }
            startThread { $0.serve(client) }
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var buffer: [UInt8] = []
        var trickling = false
        var lastDrip = Date.distantPast
        while !stopping {
            if case .trickle(let interval) = behaviour, trickling, Date().timeIntervalSince(lastDrip) >= interval {
                guard Self.send(client, Array("a".utf8)) else { return }
                lastDrip = Date()
            }
            guard Self.waitReadable(client, milliseconds: 50) else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return }  // the client left
            guard n > 0 else { continue }
            state.withLock { $0.counters.requests += 1 }
            switch behaviour {
            case .silent:
                continue
            case .trickle:
                guard !trickling else { continue }
                trickling = true
                guard Self.send(client, Array("$100000\r\n".utf8)) else { return }
                lastDrip = Date()
            case .misses(let delay):
                buffer += chunk[..<n]
                let commands = RESPCommands.take(from: &buffer)
                guard !commands.isEmpty else { continue }
                state.withLock { state in
                    state.counters.pending += 1
                    state.counters.maximumPending = max(state.counters.maximumPending, state.counters.pending)
                }
                let answerAt = Date().addingTimeInterval(delay)
                while Date() < answerAt && !stopping { Thread.sleep(forTimeInterval: 0.005) }
                state.withLock { $0.counters.pending -= 1 }
                guard Self.send(client, commands.flatMap(RESPCommands.miss)) else { return }
            }
        }
    }

    private static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    /// Sends everything; false once the client has gone (never a SIGPIPE).
    private static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }
}

/// Just enough of RESP to read a client's commands (arrays of bulk strings) and answer misses.
enum RESPCommands {
    /// The complete commands at the start of `buffer`, removed from it.
    static func take(from buffer: inout [UInt8]) -> [[String]] {
        var commands: [[String]] = []
        var offset = 0
        while let (command, end) = parse(buffer, at: offset) {
            commands.append(command)
            offset = end
        }
        buffer.removeFirst(offset)
        return commands
    }

    static func miss(_ command: [String]) -> [UInt8] {
        let text =
            switch command.first?.uppercased() {
            case "SISMEMBER": ":0\r\n"
            case "HMGET": "*\(max(0, command.count - 2))\r\n" + String(repeating: "$-1\r\n", count: max(0, command.count - 2))
            case "HGET", "GET": "$-1\r\n"
            default: "+OK\r\n"
            }
        return Array(text.utf8)
    }

    private static func parse(_ bytes: [UInt8], at start: Int) -> ([String], Int)? {
        guard let (count, afterCount) = number(bytes, at: start, prefix: UInt8(ascii: "*")) else { return nil }
        var arguments: [String] = []
        var offset = afterCount
        for _ in 0..<count {
            guard let (length, afterLength) = number(bytes, at: offset, prefix: UInt8(ascii: "$")),
                afterLength + length + 2 <= bytes.count
            else { return nil }
            arguments.append(String(decoding: bytes[afterLength..<afterLength + length], as: UTF8.self))
            offset = afterLength + length + 2
        }
        return (arguments, offset)
    }

    /// `<prefix><digits>\r\n` at `start`: the number and the offset after it.
    private static func number(_ bytes: [UInt8], at start: Int, prefix: UInt8) -> (Int, Int)? {
        guard start < bytes.count, bytes[start] == prefix else { return nil }
        var index = start + 1
        var value = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: "\r") {
            guard let digit = Int(exactly: bytes[index]).map({ $0 - 48 }), (0...9).contains(digit) else { return nil }
            value = value * 10 + digit
            index += 1
        }
        guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") else { return nil }
        return (value, index + 2)
    }
}
