import Glibc
import Logging
import Synchronization

/// Tells the service manager how the daemon is doing, with systemd's notification protocol
/// (sd_notify(3)): newline-separated `KEY=value` fields in one datagram to the AF_UNIX socket named
/// by `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket). Spoken directly rather than
/// through libsystemd: the protocol is a documented, stable datagram, and a library for one
/// `sendto` would add a link-time dependency to every install, systemd or not.
///
/// Sending never blocks (`MSG_DONTWAIT`: a manager that does not read loses a message, the
/// daemon never waits for it) and never fails the daemon: the first error is logged, later ones
/// only at debug level.
public final class SystemdNotifier: Sendable {
    /// The socket's address as given, for messages.
    public let socketName: String
    private let address: [UInt8]
    private let logger: Logger
    /// A leaf lock: held around one non-blocking `sendto`, never while another lock is taken.
    private let state = Mutex(State())

    private struct State {
        var fd: Int32 = -1
        var warned = false
    }

    /// The notifier `environment`'s `NOTIFY_SOCKET` names; nil when it is unset or empty (not
    /// started by systemd, or by a unit that is not `Type=notify`): then nothing is ever sent.
    public init?(environment: [String: String], logger: Logger) {
        guard let name = environment["NOTIFY_SOCKET"], !name.isEmpty else { return nil }
        socketName = name
        self.logger = logger
        // An abstract socket's name starts with a NUL byte, written `@` in the variable.
        address = name.hasPrefix("@") ? [0] + Array(name.utf8.dropFirst()) : Array(name.utf8)
    }

    deinit {
        state.withLock { if $0.fd >= 0 { close($0.fd) } }
    }

    /// `READY=1` with the status line: the mount answers.
    public func ready(status: String) { send(["READY=1", "STATUS=\(Self.oneLine(status))"]) }

    /// `STATUS=…` alone.
    public func status(_ text: String) { send(["STATUS=\(Self.oneLine(text))"]) }

    /// `STOPPING=1`: the daemon has begun to stop (unmounting).
    public func stopping() { send(["STOPPING=1"]) }

    /// `WATCHDOG=1`: the daemon is alive.
    public func watchdog() { send(["WATCHDOG=1"]) }

    /// Sends the fields as one datagram; whether it went out.
    @discardableResult
    public func send(_ fields: [String]) -> Bool {
        let message = Array(fields.joined(separator: "\n").utf8)
        return state.withLock { state in
            if state.fd < 0 {
                state.fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                if state.fd < 0 { return failed(&state, errno, fields) }
            }
            var target = sockaddr_un()
            target.sun_family = sa_family_t(AF_UNIX)
            let capacity = MemoryLayout.size(ofValue: target.sun_path)
            // A path needs its terminating NUL; an abstract name is exactly its bytes.
            guard address.count + (address.first == 0 ? 0 : 1) <= capacity else { return failed(&state, ENAMETOOLONG, fields) }
            withUnsafeMutableBytes(of: &target.sun_path) { path in
                path.copyBytes(from: address)
            }
            let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + address.count + (address.first == 0 ? 0 : 1)
            let sent = withUnsafePointer(to: &target) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    message.withUnsafeBytes { bytes in
                        sendto(state.fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), address, socklen_t(length))
                    }
                }
            }
            return sent == message.count ? true : failed(&state, sent < 0 ? errno : EMSGSIZE, fields)
        }
    }

    /// Logs the first failure as a warning, the rest at debug level; always false.
    private func failed(_ state: inout State, _ code: Int32, _ fields: [String]) -> Bool {
        let metadata: Logger.Metadata = [
            "socket": "\(socketName)", "message": "\(fields.first ?? "")", "error": "\(String(cString: strerror(code)))",
        ]
        if state.warned {
            logger.debug("cannot notify the service manager", metadata: metadata)
        } else {
            state.warned = true
            logger.warning("cannot notify the service manager (further failures are logged at debug level)", metadata: metadata)
        }
        return false
    }

    /// A field ends at a newline.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
