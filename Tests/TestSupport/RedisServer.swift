import Foundation
import Glibc
import Synchronization

/// A real `redis-server` on 127.0.0.1 for the tests: no persistence, its own port and directory.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private let directory: TemporaryDirectory
    private let process: Mutex<ChildProcess?>

    /// Starts a server (on `port`, or a free one) and returns once it answers PING.
    public init(port fixedPort: Int? = nil) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-redis")
        var lastError = ""
        for _ in 0..<3 {
            let port = try fixedPort ?? freeLoopbackPort()
            let logPath = directory.path + "/redis.log"
            // posix_spawn with an empty signal mask: a child of a test thread must still get SIGTERM.
            let child = try ChildProcess(
                executable: "/usr/bin/redis-server",
                arguments: [
                    "--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                    "--dir", directory.path, "--daemonize", "no",
                ],
                stdoutPath: logPath, stderrPath: logPath)
            if Self.waitUntilReady(child, port: port) {
                self.port = port
                self.process = Mutex(child)
                return
            }
            child.signal(SIGKILL)
            _ = child.wait(timeout: 10)
            lastError = (try? readBytes(logPath)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if !lastError.contains("Address already in use") { break }
        }
        throw TestSupportError("redis-server did not start:\n\(lastError)")
    }

    deinit { stop() }

    /// `127.0.0.1:<port>`.
    public var address: String { "127.0.0.1:\(port)" }

    /// Runs `redis-cli` against this server and returns its output.
    @discardableResult
    public func cli(_ arguments: String...) throws -> String {
        let output = try runProcess("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port)] + arguments)
        return output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends `number` to the server (SIGSTOP and SIGCONT: a Redis that accepts connections, since
    /// the kernel completes them, and never answers). A no-op once it is stopped.
    public func signal(_ number: Int32) {
        process.withLock { $0?.signal(number) }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and reaps it; idempotent.
    public func stop() {
        process.withLock { process in
            guard let child = process else { return }
            process = nil
            child.signal(SIGCONT)  // a stopped server would not act on SIGTERM
            child.signal(SIGTERM)
            if child.wait(timeout: 10) == nil {
                child.signal(SIGKILL)
                _ = child.wait(timeout: 10)
            }
        }
    }

    /// Polls PING with a short backoff for 20 s.
    private static func waitUntilReady(_ child: ChildProcess, port: Int) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        var delay = 0.01
        while child.isRunning && Date() < deadline {
            if let output = try? runProcess("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port), "ping"]),
                output.stdoutText.contains("PONG")
            {
                return true
            }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.2)
        }
        return false
    }
}
