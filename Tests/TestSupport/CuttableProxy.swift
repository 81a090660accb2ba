import Foundation
import Glibc
import Synchronization

/// A TCP proxy on 127.0.0.1 in front of another local server (an S3 server that keeps its data in
/// memory, so it cannot be stopped and started again): `cut()` resets every connection and
/// refuses new ones — an outage, as a client sees it —, `restore()` forwards again. Each call
/// returns once the proxy has said it acted (a line in its log), never after a guessed pause.
/// Python, one thread per connection; it exits when its parent (the test process) is gone.
public final class CuttableProxy: @unchecked Sendable {
    public let port: Int
    private let directory: TemporaryDirectory
    private let logPath: String
    private let process: Mutex<ChildProcess?>
    private let changes = Mutex(0)

    /// Starts the proxy to `127.0.0.1:<targetPort>` and waits until a request through it is answered.
    public init(targetPort: Int) throws {
        directory = try TemporaryDirectory(prefix: "blobfs-proxy")
        logPath = directory.path + "/proxy.log"
        let (child, port) = try PythonServerScript.start(
            Self.script, arguments: [String(targetPort)], logPath: logPath, probe: "/", what: "the proxy")
        self.port = port
        process = Mutex(child)
    }

    deinit { stop() }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Resets every open connection and refuses new ones until `restore()`.
    public func cut() throws { try change(SIGUSR1, "cut") }

    /// Forwards new connections again.
    public func restore() throws { try change(SIGUSR2, "restored") }

    private func change(_ signal: Int32, _ word: String) throws {
        let number = changes.withLock { count in
            count += 1
            return count
        }
        process.withLock { $0?.signal(signal) }
        let line = "\(word) \(number)\n"
        let deadline = Date().addingTimeInterval(30)
        var delay = 0.002
        while Date() < deadline {
            if let log = try? readBytes(logPath), String(decoding: log, as: UTF8.self).contains(line) { return }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.05)
        }
        throw TestSupportError("the proxy did not report \"\(line.dropLast())\"")
    }

    public func stop() { PythonServerScript.stop(process) }

    private static let script = """
        import os, signal, socket, sys, threading, time
        port, target = int(sys.argv[1]), int(sys.argv[2])
        cut = threading.Event()
        lock = threading.Lock()
        conns = set()
        changes = [0]
        \(PythonServerScript.endsWithItsParent)
        def report(word):
            changes[0] += 1
            print(f"{word} {changes[0]}", flush=True)
        def on_cut(signum, frame):
            cut.set()
            with lock:
                for c in list(conns):
                    try:
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            report("cut")
        def on_restore(signum, frame):
            cut.clear()
            report("restored")
        signal.signal(signal.SIGUSR1, on_cut)
        signal.signal(signal.SIGUSR2, on_restore)
        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        def handle(client):
            if cut.is_set():
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", target))
            except OSError:
                client.close()
                return
            with lock:
                conns.update((client, upstream))
            back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
            back.start()
            pipe(client, upstream)
            back.join()
            with lock:
                conns.discard(client)
                conns.discard(upstream)
            client.close()
            upstream.close()
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        while True:
            client, _ = server.accept()
            threading.Thread(target=handle, args=(client,), daemon=True).start()
        """
}
