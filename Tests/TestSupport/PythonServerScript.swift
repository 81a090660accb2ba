import Glibc
import Synchronization

/// What the Python servers tests start share (the faulty HTTP server, the cuttable proxy, moto).
enum PythonServerScript {
    /// Starts `script` with a free loopback port as its first argument (then `arguments`), its
    /// output in `logPath`, and waits until it answers `probe` on that port; `what` names it in
    /// the error when it does not start within 30 s (killed then).
    static func start(_ script: String, arguments: [String], logPath: String, probe: String, what: String) throws -> (child: ChildProcess, port: Int) {
        let port = try freeLoopbackPort()
        let child = try ChildProcess(
            executable: "/usr/bin/python3", arguments: ["-c", script, String(port)] + arguments, stdoutPath: logPath, stderrPath: logPath)
        guard waitUntilAnswering(child, url: "http://127.0.0.1:\(port)\(probe)", within: 30) else {
            child.signal(SIGKILL)
            _ = child.wait(timeout: 10)
            throw TestSupportError("\(what) did not start: \((try? readBytes(logPath)).map { String(decoding: $0, as: UTF8.self) } ?? "")")
        }
        return (child, port)
    }

    /// Kills the server, once (later calls find nothing), and waits for it.
    static func stop(_ process: borrowing Mutex<ChildProcess?>) {
        process.withLock { process in
            guard let child = process else { return }
            process = nil
            child.signal(SIGKILL)
            _ = child.wait(timeout: 10)
        }
    }

    /// A thread that ends the process once its parent is gone, so that a killed test run never
    /// leaves a server behind. Needs `os`, `threading` and `time` imported; indented for the
    /// scripts' top level.
    static let endsWithItsParent = """
        parent = os.getppid()
        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
        """
}
