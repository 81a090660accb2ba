import Foundation
import Glibc
import Synchronization

/// An HTTP server on 127.0.0.1 that misbehaves by path. Most paths are accepted and not answered
/// for a long time (`stall` seconds): the server a client must give up on within its own
/// deadline. Paths
/// under `/ready` are answered at once (200, empty, HTTP/1.1 keep-alive): its readiness probe, and
/// a bucket named `ready` for a client's connection reuse. Paths under `/slowdown` answer 503
/// SlowDown to the first two requests of each path, then 200 with the body `ok`: a server a
/// client must retry.
/// Python's http.server, one thread per connection; it exits when its parent (the test process) is gone.
public final class FaultyHTTPServer: @unchecked Sendable {
    public let port: Int
    private let directory: TemporaryDirectory
    private let process: Mutex<ChildProcess?>

    public init(stall: Int = 120) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-stall")
        let logPath = directory.path + "/server.log"
        // The probe path answers at once, so readiness needs no guess.
        let (child, port) = try PythonServerScript.start(
            Self.script, arguments: [String(stall)], logPath: logPath, probe: "/ready", what: "the faulty HTTP server")
        self.port = port
        process = Mutex(child)
    }

    deinit { stop() }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public func stop() { PythonServerScript.stop(process) }

    private static let script = """
        import os, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        port, stall = int(sys.argv[1]), int(sys.argv[2])
        seen, lock = {}, threading.Lock()
        \(PythonServerScript.endsWithItsParent)
        class Faulty(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def answer(self):
                if self.path.startswith("/slowdown"):
                    with lock:
                        seen[self.path] = seen.get(self.path, 0) + 1
                        count = seen[self.path]
                    if count <= 2:
                        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                        self.send_response(503)
                    else:
                        body = b"ok"
                        self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                if not self.path.startswith("/ready"):
                    time.sleep(stall)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = answer
            def log_message(self, *args):
                pass
        server = ThreadingHTTPServer(("127.0.0.1", port), Faulty)
        server.daemon_threads = True
        server.serve_forever()
        """
}
