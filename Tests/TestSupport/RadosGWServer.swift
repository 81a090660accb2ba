import Foundation
import Glibc
import Synchronization

/// Ceph's radosgw on 127.0.0.1 (a one-node cluster of scripts/radosgw.sh: monitor, OSD,
/// radosgw), with one bucket created: the S3 server here that checks AWS Signature V4 as AWS does
/// (sorted query, `%2F` in query values, `x-amz-content-sha256`) and has real multipart and ETag
/// semantics (s3.md §1, §7). Starting it takes 20–90 s, so a test process starts one
/// (`shared()`) and its suites work under prefixes of their own. The script watches the test
/// process: the cluster stops when the process ends, however it ended.
public final class RadosGWServer: S3TestServer {
    public let name = "radosgw"
    public let endpoint: String
    public let port: Int
    public let bucket: String
    public let accessKey: String
    public let secretKey: String
    public let region: String
    /// Holds the cluster's directory (`cluster`: its data, logs, pids and env).
    private let directory: TemporaryDirectory
    private let stopped = Mutex(false)

    /// Starts a cluster (at most `within` seconds) and creates `bucket`; throws with the script's
    /// output when the cluster does not come up.
    public init(bucket: String = "blobfs-test", within seconds: Double = 240) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-radosgw")
        let cluster = directory.path + "/cluster"
        let output = directory.path + "/start.out"
        // posix_spawn with an empty signal mask (ChildProcess): the daemons inherit it, and
        // blocked SIGTERMs would make every stop wait for the script's SIGKILL.
        let script = try ChildProcess(
            executable: "/bin/bash", arguments: [Self.scriptPath, "start", cluster, String(getpid())], stdoutPath: output, stderrPath: output)
        let status = script.wait(timeout: seconds)
        let printed = (try? readBytes(output)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard status == 0, let env = try? readBytes(cluster + "/env") else {
            if status == nil {
                script.signal(SIGTERM)  // its trap stops what it started
                _ = script.wait(timeout: 60)
            }
            Self.runStop(cluster)
            directory.remove()
            let how = status.map { "exited with \($0)" } ?? "did not finish within \(Int(seconds)) s"
            throw TestSupportError("scripts/radosgw.sh start \(how):\n\(printed)")
        }
        var values: [String: String] = [:]
        for line in String(decoding: env, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard let endpoint = values["S3_ENDPOINT"], let port = endpoint.split(separator: ":").last.flatMap({ Int($0) }),
            let accessKey = values["S3_ACCESS_KEY"], let secretKey = values["S3_SECRET_KEY"]
        else {
            Self.runStop(cluster)
            directory.remove()
            throw TestSupportError("scripts/radosgw.sh wrote no usable env:\n\(String(decoding: env, as: UTF8.self))")
        }
        self.endpoint = endpoint
        self.port = port
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = values["S3_REGION"] ?? "us-east-1"
        self.bucket = bucket
        do {
            try createBucket(bucket)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Stops every process of the cluster and removes its directory; idempotent.
    public func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        Self.runStop(directory.path + "/cluster")
        directory.remove()
    }

    /// The process's one cluster, started on first use by a thread of its own and stopped at
    /// exit. Callers await it without holding one of the test runner's threads (there is one per
    /// core, and a start takes 20–90 s: tests that need no radosgw run meanwhile). A cluster
    /// that failed to start is not tried again: every later caller gets the same error at once.
    public static func shared() async throws -> RadosGWServer {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<RadosGWServer, any Error>) in
            let startHere = sharedState.withLock { state in
                switch state {
                case .started(let result):
                    waiter.resume(with: result)
                    return false
                case .starting(let waiters):
                    state = .starting(waiters + [waiter])
                    return false
                case .idle:
                    state = .starting([waiter])
                    return true
                }
            }
            guard startHere else { return }
            Thread.detachNewThread {
                let result = Result<RadosGWServer, any Error> { try RadosGWServer() }
                if case .success = result {
                    atexit {
                        guard case .started(.success(let server)) = RadosGWServer.sharedState.withLock({ $0 }) else { return }
                        server.stop()
                    }
                }
                let waiters = sharedState.withLock { state in
                    defer { state = .started(result) }
                    guard case .starting(let waiters) = state else { return [CheckedContinuation<RadosGWServer, any Error>]() }
                    return waiters
                }
                for waiter in waiters { waiter.resume(with: result) }
            }
        }
    }

    private enum SharedState: Sendable {
        case idle
        case starting([CheckedContinuation<RadosGWServer, any Error>])
        case started(Result<RadosGWServer, any Error>)
    }

    private static let sharedState = Mutex<SharedState>(.idle)

    /// `scripts/radosgw.sh stop <cluster>`, through posix_spawn (safe in atexit).
    private static func runStop(_ cluster: String) {
        guard let stop = try? ChildProcess(executable: "/bin/bash", arguments: [scriptPath, "stop", cluster], stdoutPath: "/dev/null", stderrPath: "/dev/null")
        else { return }
        _ = stop.wait(timeout: 120)
    }

    /// scripts/radosgw.sh of this checkout (this file is Tests/TestSupport/RadosGWServer.swift).
    static let scriptPath: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("scripts/radosgw.sh").path
    }()
}
