import Foundation
import Glibc
import Synchronization

/// Debian's real docker-registry (distribution 2.8.2) running as a child process on 127.0.0.1, for interop tests.
public final class RegistryServer: @unchecked Sendable {
    /// Which blob descriptor cache the registry uses; `.none` is the only safe choice for checking a tree written elsewhere.
    public enum Cache: Sendable {
        case none
        case inmemory
        case redis(address: String)
    }

    /// The TCP port on 127.0.0.1 the registry listens on.
    public let port: Int
    /// Holds the config and the log; removed when the server is released.
    private let directory: TemporaryDirectory
    private let logPath: String
    private let state: Mutex<RunningState>

    /// Writes a config, starts `docker-registry serve` and returns once `GET /v2/` answers 200.
    public convenience init(root: String, cache: Cache = .none, readOnly: Bool = false) throws {
        try self.init { port in RegistryConfig(root: root, cache: cache, readOnly: readOnly, port: port) }
    }

    /// The same with the registry's S3 driver on `s3`'s bucket.
    public convenience init(s3: RegistryS3Storage, cache: Cache = .none) throws {
        try self.init { port in RegistryConfig(root: "", cache: cache, readOnly: false, port: port, s3: s3) }
    }

    private init(config makeConfig: (Int) -> RegistryConfig) throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-registry")
        let logPath = directory.path + "/registry.log"
        var attempt = 1
        while true {
            let port = try freeLoopbackPort()
            let config = makeConfig(port)
            do {
                let running = try Self.launch(config: config, directory: directory.path, logPath: logPath)
                self.directory = directory
                self.logPath = logPath
                self.port = port
                self.state = Mutex(running)
                return
            } catch let error as LaunchError {
                // The free port was only free when we looked; another process may have taken it since.
                if error.log.contains("address already in use") && attempt < 3 {
                    attempt += 1
                    continue
                }
                throw TestSupportError("docker-registry did not start: \(error.reason)\n--- registry log ---\n\(error.log)")
            }
        }
    }

    deinit {
        stop()
    }

    /// "http://127.0.0.1:<port>", without a trailing slash.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// A client for this server.
    public var client: RegistryClient { RegistryClient(baseURL: baseURL) }

    /// Everything the registry printed so far (stdout and stderr, including its access log).
    public var log: String {
        Self.readLog(logPath)
    }

    /// Sends SIGTERM, waits for the exit (SIGKILL after 10 s). Safe to call more than once and from any thread.
    public func stop() {
        state.withLock { state in
            guard let process = state.process else { return }
            state.process = nil
            Self.terminate(process, grace: 10)
            try? state.logHandle?.close()
            state.logHandle = nil
        }
    }

    /// Runs `body` with a fresh server and stops it however `body` ends, so a failing test leaves no registry behind.
    public static func withServer<T>(
        root: String, cache: Cache = .none, readOnly: Bool = false, _ body: (RegistryServer) throws -> T
    ) throws -> T {
        let server = try RegistryServer(root: root, cache: cache, readOnly: readOnly)
        defer { server.stop() }
        return try body(server)
    }

    // MARK: - Process handling

    /// The child process and the log file it writes to, until stop().
    private struct RunningState {
        var process: Process?
        var logHandle: FileHandle?
    }

    /// Why a start attempt failed, with the log that tells whether trying another port may help.
    private struct LaunchError: Error {
        var reason: String
        var log: String
    }

    /// Starts one registry process and waits until it serves `/v2/`; on failure the process is gone.
    private static func launch(config: RegistryConfig, directory: String, logPath: String) throws -> RunningState {
        let configPath = directory + "/config.yml"
        try writeBytes(Array(config.yaml.utf8), to: configPath)
        let logHandle = try createWriteHandle(logPath)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", configPath]
        // REGISTRY_* variables override the config file; a stray one from the environment must not leak in.
        // AWS_CA_BUNDLE makes its S3 driver panic at start (s3.md, G1).
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("REGISTRY_") && $0.key != "AWS_CA_BUNDLE" }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = logHandle
        process.standardError = logHandle
        do {
            try process.run()
        } catch {
            try? logHandle.close()
            throw LaunchError(reason: "cannot run /usr/bin/docker-registry: \(error)", log: "")
        }
        if let problem = waitUntilReady(process, port: config.port, logPath: logPath) {
            terminate(process, grace: 10)
            try? logHandle.close()
            throw LaunchError(reason: problem, log: readLog(logPath))
        }
        return RunningState(process: process, logHandle: logHandle)
    }

    /// Polls with a 20 ms..200 ms backoff for 30 s; returns nil once ready, else why not.
    private static func waitUntilReady(_ process: Process, port: Int, logPath: String) -> String? {
        let probe = Curl(maxSeconds: 2)
        let url = "http://127.0.0.1:\(port)/v2/"
        // The registry logs this line only after its bind succeeded. Without it a 200 may come from another
        // process that took the port after freeLoopbackPort() released it.
        let listening = "listening on 127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(30)
        var delay = 0.02
        var lastAnswer = "no answer yet"
        while true {
            guard process.isRunning else {
                return "it exited with status \(process.terminationStatus) before answering \(url)"
            }
            if !readLog(logPath).contains(listening) {
                lastAnswer = "no \"\(listening)\" in the log yet"
            } else {
                do {
                    let response = try probe.perform(method: "GET", url: url, headers: [:], body: nil)
                    if response.status == 200 { return nil }
                    lastAnswer = "HTTP \(response.status): \(response.text)"
                } catch {
                    lastAnswer = "\(error)"
                }
            }
            if Date() >= deadline {
                return "GET \(url) did not answer 200 within 30 s (last: \(lastAnswer))"
            }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.2)
        }
    }

    /// The log file's text; empty if it can't be read.
    private static func readLog(_ path: String) -> String {
        (try? readBytes(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// SIGTERM, then SIGKILL once `grace` seconds have passed, then wait until the child is reaped.
    private static func terminate(_ process: Process, grace: TimeInterval) {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(grace)
            while process.isRunning && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.01)
            }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
        }
        process.waitUntilExit()
    }
}
