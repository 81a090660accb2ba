import Foundation
import Glibc
import Synchronization

/// A real `redis-server` on 127.0.0.1 for the tests: no persistence, its own port and directory.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private let directory: TemporaryDirectory
    private let process: Mutex<Process?>

    /// Starts a server (on `port`, or a free one) and returns once it answers PING.
    public init(port fixedPort: Int? = nil) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-redis")
        var lastError = ""
        for _ in 0..<3 {
            let port = try fixedPort ?? freeLoopbackPort()
            let logPath = directory.path + "/redis.log"
            let log = try createWriteHandle(logPath)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
            process.arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                "--dir", directory.path, "--daemonize", "no",
            ]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = log
            process.standardError = log
            try process.run()
            if Self.waitUntilReady(process, port: port) {
                self.port = port
                self.process = Mutex(process)
                return
            }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
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

    /// Stops the server (`SHUTDOWN NOSAVE`, then SIGKILL after 10 s); idempotent. Not SIGTERM:
    /// a child spawned from a test's thread may inherit SIGTERM blocked.
    public func stop() {
        process.withLock { process in
            guard let running = process else { return }
            process = nil
            if running.isRunning {
                _ = try? runProcess("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port), "shutdown", "nosave"])
            }
            let deadline = Date().addingTimeInterval(10)
            while running.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            if running.isRunning { kill(running.processIdentifier, SIGKILL) }
            running.waitUntilExit()
        }
    }

    /// Polls PING with a short backoff for 20 s.
    private static func waitUntilReady(_ process: Process, port: Int) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        var delay = 0.01
        while process.isRunning && Date() < deadline {
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
