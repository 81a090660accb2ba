import Foundation
import Glibc
import Synchronization

/// An HTTP proxy on 127.0.0.1 in front of a local S3 server that can hold some requests: after
/// `hold()`, every GET whose path contains `pattern` waits in the proxy (not forwarded, not
/// answered) until `release()`; every other request is forwarded at once. So a test can stall
/// one object's data while the rest of the store answers, and check what else still works.
/// `waitUntilHeld(_:)` returns once that many requests are being held (a line in the proxy's
/// log), never after a guessed pause. Requests are forwarded as sent (headers, Host included,
/// so a signature stays valid for a server that checks none: moto). Python, one thread per
/// connection; it exits when its parent (the test process) is gone.
public final class GatedProxy: @unchecked Sendable {
    public let port: Int
    private let directory: TemporaryDirectory
    private let logPath: String
    private let process: Mutex<ChildProcess?>
    private let changes = Mutex(0)

    /// Starts the proxy to `127.0.0.1:<targetPort>`, holding GETs of paths containing `pattern`
    /// while held, and waits until a request through it is answered.
    public init(targetPort: Int, pattern: String) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-gated")
        logPath = directory.path + "/proxy.log"
        let (child, port) = try PythonServerScript.start(
            Self.script, arguments: [String(targetPort), pattern], logPath: logPath, probe: "/", what: "the gated proxy")
        self.port = port
        process = Mutex(child)
    }

    deinit { stop() }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Holds matching GETs from now on.
    public func hold() throws { try change(SIGUSR1, "holding") }

    /// Forwards the held GETs, and every later one.
    public func release() throws { try change(SIGUSR2, "released") }

    /// Returns once `count` matching GETs have been held in all; throws after `seconds`.
    public func waitUntilHeld(_ count: Int, within seconds: Double = 60) throws {
        try waitForLine("held \(count)\n", within: seconds)
    }

    public func stop() { PythonServerScript.stop(process) }

    private func change(_ signal: Int32, _ word: String) throws {
        let number = changes.withLock { count in
            count += 1
            return count
        }
        process.withLock { $0?.signal(signal) }
        try waitForLine("\(word) \(number)\n", within: 30)
    }

    private func waitForLine(_ line: String, within seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        var delay = 0.002
        while Date() < deadline {
            if let log = try? readBytes(logPath), String(decoding: log, as: UTF8.self).contains(line) { return }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.05)
        }
        throw TestSupportError("the gated proxy did not report \"\(line.dropLast())\"")
    }

    private static let script = """
        import http.client, os, signal, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        port, target, pattern = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        gate = threading.Event()
        gate.set()
        lock = threading.Lock()
        counts = {"changes": 0, "held": 0}
        \(PythonServerScript.endsWithItsParent)
        def report(word):
            counts["changes"] += 1
            print(f"{word} {counts['changes']}", flush=True)
        def on_hold(signum, frame):
            gate.clear()
            report("holding")
        def on_release(signum, frame):
            gate.set()
            report("released")
        signal.signal(signal.SIGUSR1, on_hold)
        signal.signal(signal.SIGUSR2, on_release)
        class Proxy(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "GET" and pattern in self.path and not gate.is_set():
                    with lock:
                        counts["held"] += 1
                        print(f"held {counts['held']}", flush=True)
                    gate.wait()
                upstream = http.client.HTTPConnection("127.0.0.1", target)
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    upstream.putheader(name, value)
                upstream.endheaders(body)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    lowered = name.lower()
                    if lowered in ("transfer-encoding", "connection") or (lowered == "content-length" and self.command != "HEAD"):
                        continue
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()
            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward
            def log_message(self, *args):
                pass
        server = ThreadingHTTPServer(("127.0.0.1", port), Proxy)
        server.daemon_threads = True
        server.serve_forever()
        """
}
