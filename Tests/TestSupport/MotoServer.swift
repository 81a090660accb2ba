import Foundation
import Glibc
import Synchronization

/// moto's S3 server (PyPI `moto[s3]`, installed by `make deps`) on 127.0.0.1 for the S3 driver's
/// tests, with one bucket created. It keeps objects in memory and checks no signatures (s3.md
/// §1, appendix C). The server ends with its parent too: it watches its parent process and
/// exits when the test process is gone, however that ended.
public final class MotoServer: S3TestServer, @unchecked Sendable {
    public let port: Int
    /// The bucket `init` created.
    public let bucket: String
    private let directory: TemporaryDirectory
    private let logPath: String
    private let process: Mutex<ChildProcess?>

    /// The credentials the tests sign with (moto accepts any).
    public static let accessKey = "blobfstest"
    public static let secretKey = "blobfstestsecret"

    public var name: String { "moto" }
    public var accessKey: String { Self.accessKey }
    public var secretKey: String { Self.secretKey }
    public var region: String { "us-east-1" }

    /// Starts the server on a free port, waits (at most 60 s: moto imports for a while on a busy
    /// machine) until it answers, and creates `bucket`.
    public init(bucket: String = "blobfs-test") throws {
        directory = try TemporaryDirectory(prefix: "blobfs-moto")
        logPath = directory.path + "/moto.log"
        self.bucket = bucket
        let python = try Self.pythonWithMoto()
        var lastError = ""
        for _ in 0..<3 {
            let port = try freeLoopbackPort()
            let child = try ChildProcess(
                executable: python, arguments: ["-c", Self.bootstrap, String(port)],
                stdoutPath: logPath, stderrPath: logPath)
            if waitUntilAnswering(child, url: "http://127.0.0.1:\(port)/", within: 60) {
                self.port = port
                process = Mutex(child)
                do {
                    let created = try Curl(maxSeconds: 30).perform(method: "PUT", url: endpoint + "/" + bucket, headers: [:], body: nil)
                    guard created.status == 200 else { throw TestSupportError("creating bucket \(bucket): HTTP \(created.status) \(created.text)") }
                } catch {
                    stop()
                    throw error
                }
                return
            }
            child.signal(SIGKILL)
            _ = child.wait(timeout: 10)
            lastError = Self.readLog(logPath)
            if !lastError.contains("Address already in use") { break }
        }
        throw TestSupportError("moto did not start:\n\(lastError)")
    }

    deinit { stop() }

    /// `http://127.0.0.1:<port>`.
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// An unsigned GET of `pathAndQuery` (`/<bucket>?list-type=2&prefix=…`): moto checks no
    /// signatures unless `enforceSignatures()` was called, so tests can look at the bucket directly.
    public func get(_ pathAndQuery: String) throws -> HTTPResponse {
        try Curl(maxSeconds: 30).perform(method: "GET", url: endpoint + pathAndQuery, headers: [:], body: nil)
    }

    /// What the server logged (every request, on stderr).
    public var log: String { Self.readLog(logPath) }

    private static func readLog(_ path: String) -> String {
        (try? readBytes(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Stops the server (SIGTERM, SIGKILL after 10 s) and reaps it; idempotent.
    public func stop() {
        process.withLock { process in
            guard let child = process else { return }
            process = nil
            child.signal(SIGCONT)
            child.signal(SIGTERM)
            if child.wait(timeout: 10) == nil {
                child.signal(SIGKILL)
                _ = child.wait(timeout: 10)
            }
        }
    }

    /// Makes this server check every request's SigV4 signature from now on (s3.md, appendix C):
    /// an IAM user allowed everything, its access key, then moto's `reset-auth`. Returns the
    /// key; requests signed with anything else get 403. moto cannot check a query value holding
    /// `%2F` (it decodes before it verifies, G8), so only slash-free queries pass.
    public func enforceSignatures() throws -> (accessKey: String, secretKey: String) {
        let script = """
            import json, sys, boto3
            iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                               aws_access_key_id="setup", aws_secret_access_key="setup")
            iam.create_user(UserName="blobfs")
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            iam.put_user_policy(UserName="blobfs", PolicyName="all", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName="blobfs")["AccessKey"]
            print(key["AccessKeyId"], key["SecretAccessKey"])
            """
        let output = try runProcess(try Self.pythonWithMoto(), ["-c", script, endpoint])
        let fields = output.stdoutText.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard output.status == 0, fields.count == 2 else { throw TestSupportError("creating an IAM key in moto: \(output.stderrText)") }
        // A form Content-Type would be eaten by Flask: text/plain, as moto's docs do it.
        let reset = try Curl(maxSeconds: 30).perform(
            method: "POST", url: endpoint + "/moto-api/reset-auth", headers: ["Content-Type": "text/plain"], body: Array("0".utf8))
        guard reset.status == 200 else { throw TestSupportError("moto reset-auth: HTTP \(reset.status) \(reset.text)") }
        return (fields[0], fields[1])
    }

    /// Runs `body` with a fresh server, stopped however `body` ends.
    public static func withServer<T>(_ body: (MotoServer) throws -> T) throws -> T {
        let server = try MotoServer()
        defer { server.stop() }
        return try body(server)
    }

    /// One server for a whole test process (each test then works under its own key prefix),
    /// started on first use and stopped at exit.
    public static func shared() throws -> MotoServer {
        try sharedServer.withLock { shared in
            if let server = shared { return server }
            let server = try MotoServer()
            shared = server
            atexit { MotoServer.sharedServer.withLock { $0?.stop() } }
            return server
        }
    }

    private static let sharedServer = Mutex<MotoServer?>(nil)

    /// Runs moto's own `main` after starting a thread that ends the process once its parent is
    /// gone (a killed test run must not leave servers behind).
    private static let bootstrap = """
        import os, sys, threading, time
        \(PythonServerScript.endsWithItsParent)
        from moto.server import main
        main(["-H", "127.0.0.1", "-p", sys.argv[1]])
        """

    /// The interpreter that imports moto: `python3` on PATH may be a pyenv shim, so ask it for
    /// its real executable (posix_spawn wants a path, and the pid must be the server's).
    private static func pythonWithMoto() throws -> String {
        let output = try runProcess("/usr/bin/env", ["python3", "-c", "import moto.server, sys; print(sys.executable)"])
        let path = output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard output.status == 0, !path.isEmpty else {
            throw TestSupportError("python3 cannot import moto (make deps installs it): \(output.stderrText)")
        }
        return path
    }
}

/// Polls `url` with a short backoff until any HTTP answer comes, for at most `within` seconds;
/// false if the child exits first or time runs out.
func waitUntilAnswering(_ child: ChildProcess, url: String, within seconds: Double) -> Bool {
    let probe = Curl(maxSeconds: 2)
    let deadline = Date().addingTimeInterval(seconds)
    var delay = 0.02
    while child.isRunning && Date() < deadline {
        if (try? probe.perform(method: "GET", url: url, headers: [:], body: nil)) != nil { return true }
        Thread.sleep(forTimeInterval: delay)
        delay = min(delay * 2, 0.2)
    }
    return false
}
