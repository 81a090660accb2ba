import BlobFS
import Foundation
import Glibc
import Logging
import Synchronization
import Testing
import TestSupport

/// The test plays systemd's side of `Type=notify`: it binds the datagram socket named in
/// `NOTIFY_SOCKET` (an abstract one and a path), starts `blobfs mount` with it, and reads what the
/// daemon tells it: `READY=1` only once the mount answers, the status line, watchdog pings at
/// half `WATCHDOG_USEC`, `STOPPING=1` at SIGTERM.
@Suite struct SystemdNotifyTests {
    @Test func readyAfterTheMountAnswersThenStatusWatchdogAndStopping() throws {
        let workspace = try Workspace("sd-notify")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("sd/app", Array("systemd sees this".utf8))])[0]
        let socket = try NotifySocket(abstractName: "blobfs-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // Pings every 500 ms: far enough from the whole timeout (1 s) for a loaded machine's jitter.
        let daemon = try NotifiedDaemon(
            workspace, socket: socket, options: ["--passthrough", "off"], environment: ["WATCHDOG_USEC": "1000000"])
        defer { daemon.stop() }

        let first = try #require(socket.receive(timeout: 30), "no notification within 30 s\n\(daemon.log.tail(3000))")
        // The startup line is logged once the kernel's INIT exchange is done: before READY=1.
        #expect(daemon.log.contains("mounted \(try Posix.realPath(workspace.root)) at "), "READY=1 before INIT was done\n\(daemon.log)")
        // Right when READY arrives the mountpoint must be the FUSE mount, serving: its root's
        // device is the mount's (not the directory under it), and a blob reads back whole.
        var info = Glibc.stat()
        #expect(fstatat(AT_FDCWD, workspace.mountpoint, &info, 0) == 0)
        let entry = try #require(TestSupport.MountTable.entry(at: workspace.mountpoint), "READY=1 before the mount existed")
        #expect(entry.fileSystemType == "fuse.blobfs")
        #expect(entry.device == majorMinor(UInt64(info.st_dev)), "READY=1 while the mountpoint was still the directory under it")
        #expect(try Posix.readFile(workspace.mountpoint + "/" + blob.relativePath) == blob.bytes)

        let fields = NotifySocket.fields(first.text)
        #expect(fields["READY"] == "1", "the first notification: \(first.text)")
        let root = try Posix.realPath(workspace.root)
        #expect(
            fields["STATUS"]
                == "serving \(root) at \(workspace.mountpoint); read-only; verification: on; cache: memory, 10000 entries; "
                + "passthrough: off (--passthrough off)")
        // The notifier keeps its datagram socket; the test without NOTIFY_SOCKET checks there is none.
        #expect(datagramSockets(of: daemon.pid) == 1)

        var pings: [Date] = []
        while pings.count < 6, let message = socket.receive(timeout: 10) {
            #expect(message.text == "WATCHDOG=1")
            pings.append(message.time)
        }
        #expect(pings.count == 6, "\(pings.count) watchdog pings\n\(daemon.log.tail(3000))")
        let gaps = zip(pings.dropFirst(), pings).map { $0.timeIntervalSince($1) }.sorted()
        // Every half WATCHDOG_USEC: the median gap, robust to a loaded machine's late ticks.
        let median = gaps[gaps.count / 2]
        #expect(median > 0.35 && median < 0.75, "gaps between pings: \(gaps)")

        daemon.signal(SIGTERM)
        var stopping: [String: String]?
        while stopping == nil, let message = socket.receive(timeout: 20) {
            let fields = NotifySocket.fields(message.text)
            if fields["STOPPING"] == "1" { stopping = fields } else { #expect(message.text == "WATCHDOG=1") }
        }
        #expect(stopping?["STATUS"] == "unmounting \(workspace.mountpoint)", "\(daemon.log.tail(3000))")
        // Its own exit, from the SIGTERM above: `stop` would send a second one, which on a loaded
        // machine met a daemon still exiting (after "unmounted") and killed it (status -15).
        _ = daemon.waitForExit(timeout: 20)
        let stopped = daemon.stop()
        #expect(stopped.status == 0 && stopped.mountGone, "\(stopped)\n\(daemon.log.tail(3000))")
        // Nothing after STOPPING=1: the watchdog stopped with the loop.
        #expect(socket.receive(timeout: 0) == nil)
    }

    /// A real wedge: the store is served through bindfs, which the test stops (SIGSTOP), and the
    /// daemon's only worker (`--threads 1`) is sent a lookup that reads the store. Every later
    /// request waits in the kernel, the watchdog's probe among them, so the pings stop; when
    /// bindfs continues, the lookup is answered and the pings resume.
    @Test(.enabled(if: (try? Command.which("bindfs")) != nil, "skipped: bindfs is not installed (it stands in for storage that stops answering)"))
    func aWedgedLoopStopsTheWatchdogPings() throws {
        let workspace = try Workspace("sd-wedge")
        defer { workspace.remove() }
        _ = try writeStore(root: workspace.root, [("sd/app", Array("behind bindfs".utf8))])
        let stalled = try workspace.makeDirectory("bindfs")
        let bindfs = try ChildProcess(
            executable: try Command.which("bindfs"), arguments: ["-f", workspace.root, stalled],
            stdoutPath: workspace.path("bindfs.log"), stderrPath: workspace.path("bindfs.log"))
        defer {
            bindfs.signal(SIGCONT)
            bindfs.signal(SIGTERM)
            if bindfs.wait(timeout: 20) == nil { bindfs.signal(SIGKILL) }
            if TestSupport.MountTable.isMounted(stalled) { _ = TestSupport.MountTable.forceUnmount(stalled) }
        }
        try waitFor("bindfs to mount \(stalled)") { TestSupport.MountTable.entry(at: stalled)?.fileSystemType.hasPrefix("fuse") == true }

        let socket = try NotifySocket(abstractName: "blobfs-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let daemon = try NotifiedDaemon(
            workspace, root: stalled, socket: socket, options: ["--threads", "1", "--passthrough", "off"],
            environment: ["WATCHDOG_USEC": "400000"])
        defer {
            bindfs.signal(SIGCONT)  // before the daemon's stop, which needs its worker back
            daemon.stop()
        }
        let ready = try #require(socket.receive(timeout: 30), "no READY=1\n\(daemon.log.tail(3000))")
        #expect(NotifySocket.fields(ready.text)["READY"] == "1")
        for _ in 0..<2 { #expect(socket.receive(timeout: 10)?.text == "WATCHDOG=1") }

        bindfs.signal(SIGSTOP)
        try waitFor("bindfs to stop") { processState(bindfs.pid) == "T" }
        // A name never looked up: the kernel asks the daemon, whose one worker asks the store.
        let lookup = try Command.start("stat", [workspace.mountpoint + "/repo/never-looked-up-\(UInt32.random(in: 0...UInt32.max))"])
        // Pings sent before the worker got stuck may still arrive; then none for 2.5 s (6 intervals).
        let deadline = Date().addingTimeInterval(15)
        var quiet = false
        while !quiet && Date() < deadline {
            if let message = socket.receive(timeout: 2.5) {
                #expect(message.text == "WATCHDOG=1")
            } else {
                quiet = true
            }
        }
        #expect(quiet, "the watchdog kept pinging for 15 s while the daemon's only worker was stuck")
        // The wedge was real: the lookup is still waiting for the daemon.
        #expect(lookup.isRunning, "the lookup did not wait for the stopped store")
        bindfs.signal(SIGCONT)
        let looked = try lookup.wait(timeout: 30)
        #expect(looked.stderrText.contains("No such file or directory"), "the lookup, answered once bindfs went on: \(looked)")
        #expect(socket.receive(timeout: 10)?.text == "WATCHDOG=1", "no ping once the loop answered again\n\(daemon.log.tail(3000))")
        let stopped = daemon.stop()
        #expect(stopped.status == 0 && stopped.mountGone, "\(stopped)\n\(daemon.log.tail(3000))")
    }

    /// A path socket; a read-write mount with remembered verification and no descriptor cache;
    /// `WATCHDOG_PID` naming another process, so no pings although `WATCHDOG_USEC` is set.
    @Test func pathSocketStatusOfAReadWriteMountAndNoPingsForAnotherWatchdogPid() throws {
        let workspace = try Workspace("sd-path")
        defer { workspace.remove() }
        _ = try writeStore(root: workspace.root, [("sd/app", Array("a path socket".utf8))])
        let socket = try NotifySocket(path: workspace.path("notify.sock"))
        let ledger = workspace.path("verified")
        let daemon = try NotifiedDaemon(
            workspace, socket: socket,
            options: ["--read-write", "--remember-verified", ledger, "--cache-entries", "0", "--passthrough", "off"],
            environment: ["WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"])
        defer { daemon.stop() }

        let first = try #require(socket.receive(timeout: 30), "no notification within 30 s\n\(daemon.log.tail(3000))")
        let fields = NotifySocket.fields(first.text)
        #expect(fields["READY"] == "1")
        let root = try Posix.realPath(workspace.root)
        #expect(
            fields["STATUS"]
                == "serving \(root) at \(workspace.mountpoint); read-write; verification: on, remembered in \(ledger); "
                + "cache: none; passthrough: off (--passthrough off)")
        // Ten would-be ping intervals: none, since the watchdog is another process's.
        #expect(socket.receive(timeout: 1) == nil)
        daemon.signal(SIGTERM)
        let last = try #require(socket.receive(timeout: 20), "no STOPPING=1\n\(daemon.log.tail(3000))")
        #expect(NotifySocket.fields(last.text)["STOPPING"] == "1")
        _ = daemon.waitForExit(timeout: 20)  // its own exit (see above), not a second SIGTERM's
        let stopped = daemon.stop()
        #expect(stopped.status == 0 && stopped.mountGone, "\(stopped)\n\(daemon.log.tail(3000))")
    }

    /// Without NOTIFY_SOCKET (empty counts as unset, as in sd_notify) the daemon opens no
    /// datagram socket at all, and says why WATCHDOG_USEC is of no use.
    @Test func nothingIsSentWithoutNotifySocket() throws {
        let workspace = try Workspace("sd-unset")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("sd/app", Array("no systemd".utf8))])[0]
        let daemon = try NotifiedDaemon(
            workspace, socket: nil, options: [], environment: ["NOTIFY_SOCKET": "", "WATCHDOG_USEC": "100000"])
        defer { daemon.stop() }
        // The startup line comes after the mount answered: where READY=1 would have been sent.
        try daemon.waitForLog("mounted ")
        #expect(try Posix.readFile(daemon.mountpoint + "/" + blob.relativePath) == blob.bytes)
        #expect(datagramSockets(of: daemon.pid) == 0)
        #expect(daemon.log.contains("WATCHDOG_USEC is set but NOTIFY_SOCKET is not"))
        let stopped = daemon.stop()
        #expect(stopped.status == 0 && stopped.mountGone, "\(stopped)\n\(daemon.log.tail(3000))")
        #expect(!daemon.log.contains("cannot notify"))
    }

    @Test func watchdogIntervalIsHalfOfWatchdogUsecAndOnlyForThisProcess() {
        let pid: Int32 = 4242
        #expect(SystemdWatchdog.interval(environment: [:], pid: pid) == nil)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "0"], pid: pid) == nil)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "soon"], pid: pid) == nil)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "30000000"], pid: pid) == .seconds(15))
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "300000", "WATCHDOG_PID": "4242"], pid: pid) == .milliseconds(150))
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "300000", "WATCHDOG_PID": "4243"], pid: pid) == nil)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "300000", "WATCHDOG_PID": ""], pid: pid) == .milliseconds(150))
    }

    /// The watchdog pings only after `alive` answered: a probe stuck in a wedged mount stops the
    /// pings (no burst of stale ones when it returns), and none follows `stop`.
    @Test func watchdogPingsOnlyWhileAliveAnswersAndNeverAfterStop() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-sd-watchdog")
        defer { directory.remove() }
        let socket = try NotifySocket(path: directory.path + "/s")
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name], logger: Logger(label: "test")))
        let probe = StuckProbe()
        let watchdog = SystemdWatchdog(interval: .milliseconds(50), notifier: notifier, alive: { probe.answer() })
        defer { probe.release() }
        for _ in 0..<3 { #expect(socket.receive(timeout: 5)?.text == "WATCHDOG=1") }

        probe.wedge()
        #expect(probe.stuck.wait(timeout: .now() + 5) == .success, "the probe never ran")
        while socket.receive(timeout: 0) != nil {}  // pings sent before the probe got stuck
        #expect(socket.receive(timeout: 0.5) == nil, "a ping while the probe is stuck (10 intervals)")
        probe.release()
        #expect(socket.receive(timeout: 5)?.text == "WATCHDOG=1", "no ping once the probe answers again")

        watchdog.stop()
        while socket.receive(timeout: 0) != nil {}
        #expect(socket.receive(timeout: 0.3) == nil, "a ping after stop")
    }

    @Test func notifierNeedsANotifySocket() throws {
        let logger = Logger(label: "test")
        #expect(SystemdNotifier(environment: [:], logger: logger) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""], logger: logger) == nil)
        // One datagram per call, fields joined by newlines, to a path socket.
        let directory = try TemporaryDirectory(prefix: "blobfs-sd-unit")
        defer { directory.remove() }
        let socket = try NotifySocket(path: directory.path + "/s")
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": directory.path + "/s"], logger: logger))
        #expect(notifier.send(["READY=1", "STATUS=a\nb"]))
        #expect(socket.receive(timeout: 5)?.text == "READY=1\nSTATUS=a\nb")
        notifier.status("two\nlines")
        #expect(socket.receive(timeout: 5)?.text == "STATUS=two lines")
        // A socket nobody listens on: a failure, not a crash.
        let gone = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": directory.path + "/nobody"], logger: logger))
        #expect(!gone.send(["READY=1"]))
    }
}

/// `systemd-analyze verify` on Mount/blobfs.service, with ExecStart pointing at the blobfs under
/// test (it checks that the command exists). Skipped where systemd-analyze is missing or cannot
/// verify a unit here.
@Suite(.enabled(if: SystemdAnalyze.reason == nil, SystemdAnalyze.comment))
struct SystemdUnitTests {
    @Test func systemdAnalyzeAcceptsTheUnitWithAndWithoutTheWatchdog() throws {
        let unit = try String(contentsOfFile: SystemdAnalyze.unitPath, encoding: .utf8)
        let lines = unit.split(separator: "\n").map(String.init)
        #expect(lines.contains("Type=notify"))
        #expect(lines.contains("NotifyAccess=main"))
        #expect(lines.contains("#WatchdogSec=30"))
        let plain = try SystemdAnalyze.verify(unit)
        #expect(plain.status == 0 && plain.stdout.isEmpty && plain.stderr.isEmpty, "\(plain)")
        let watched = try SystemdAnalyze.verify(unit.replacingOccurrences(of: "#WatchdogSec=30", with: "WatchdogSec=30"))
        #expect(watched.status == 0 && watched.stdout.isEmpty && watched.stderr.isEmpty, "\(watched)")
        // The check can fail: a misspelt type is reported.
        let misspelt = try SystemdAnalyze.verify(unit.replacingOccurrences(of: "Type=notify", with: "Type=notfy"))
        #expect(misspelt.stderrText.contains("Failed to parse service type"), "\(misspelt)")
    }
}

enum SystemdAnalyze {
    static let unitPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Mount/blobfs.service").path
    static let reason: String? = probe()

    static var comment: Comment { Comment(rawValue: "skipped: \(reason ?? "")") }

    /// Verifies `unit` as blobfs.service in a scratch directory, ExecStart on the blobfs under test.
    static func verify(_ unit: String) throws -> CommandResult {
        let directory = try TemporaryDirectory(prefix: "blobfs-unit")
        defer { directory.remove() }
        let path = directory.path + "/blobfs.service"
        try Posix.writeFile(path, Array(unit.replacingOccurrences(of: "/usr/local/bin/blobfs", with: try BlobfsExecutable.path()).utf8))
        return try Command.run("systemd-analyze", ["verify", path], timeout: 60)
    }

    /// Why systemd-analyze cannot verify here: missing, or failing on a trivial unit.
    private static func probe() -> String? {
        guard (try? Command.which("systemd-analyze")) != nil else { return "systemd-analyze is not installed" }
        do {
            let directory = try TemporaryDirectory(prefix: "blobfs-unit-probe")
            defer { directory.remove() }
            let path = directory.path + "/probe.service"
            try Posix.writeFile(path, Array("[Service]\nExecStart=/bin/true\n".utf8))
            let result = try Command.run("systemd-analyze", ["verify", path], timeout: 60)
            return result.status == 0 ? nil : "systemd-analyze verify cannot run here: \(result)"
        } catch {
            return "systemd-analyze verify cannot run here: \(error)"
        }
    }
}

/// The service manager's end: a bound AF_UNIX datagram socket.
final class NotifySocket: Sendable {
    /// As NOTIFY_SOCKET spells it: a path, or `@name`.
    let name: String
    private let fd: Int32
    private let path: String?

    init(abstractName: String) throws {
        name = "@" + abstractName
        path = nil
        fd = try Self.bound([0] + Array(abstractName.utf8))
    }

    init(path: String) throws {
        name = path
        self.path = path
        fd = try Self.bound(Array(path.utf8) + [0])
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// The next datagram and when it arrived; nil if none within `timeout` seconds.
    func receive(timeout: Double) -> (text: String, time: Date)? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = max(0, Int32(deadline.timeIntervalSinceNow * 1000))
            let ready = poll(&poller, 1, left)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n >= 0 else { return nil }
            return (String(decoding: buffer[..<n], as: UTF8.self), Date())
        }
    }

    /// `KEY=value` lines (a STATUS line holds no newline).
    static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return fields
    }

    private static func bound(_ address: [UInt8]) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: \(Errno(errno))") }
        var local = sockaddr_un()
        local.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &local.sun_path) { $0.copyBytes(from: address) }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + address.count
        let result = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw TestSupportError("bind: \(Errno(code))")
        }
        return fd
    }
}

/// `blobfs mount` started with a notification environment; unlike `BlobfsMount` it does not wait
/// for the mount to appear (READY=1 is what the test waits for). `stop` (also on deinit) sends
/// SIGTERM, waits, and removes a mount left behind.
final class NotifiedDaemon: Sendable {
    let mountpoint: String
    private let process: ChildProcess
    private let logPath: String

    struct Stopped: CustomStringConvertible {
        var status: Int32?
        var mountGone: Bool
        var description: String { "exit status \(status.map(String.init) ?? "none (killed)"), mount \(mountGone ? "gone" : "left behind")" }
    }

    /// Mounts `root` (the workspace's store unless given) on the workspace's mountpoint.
    init(_ workspace: Workspace, root: String? = nil, socket: NotifySocket?, options: [String], environment: [String: String]) throws {
        mountpoint = workspace.mountpoint
        logPath = workspace.path("blobfs-\(UInt32.random(in: 0...UInt32.max)).log")
        var environment = environment
        if let socket { environment["NOTIFY_SOCKET"] = socket.name }
        process = try ChildProcess(
            executable: try BlobfsExecutable.path(), arguments: ["mount", root ?? workspace.root, self.mountpoint] + options,
            environment: environment, stdoutPath: logPath, stderrPath: logPath)
    }

    deinit { stop() }

    var pid: Int32 { process.pid }
    var log: String { (try? Posix.readFile(logPath)).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    func signal(_ number: Int32) { process.signal(number) }

    /// Waits (up to 30 s, polling the log file) for `text` in the log.
    func waitForLog(_ text: String) throws {
        let deadline = Date().addingTimeInterval(30)
        var delay = 0.005
        while !log.contains(text) {
            guard Date() < deadline, process.isRunning else {
                throw TestSupportError("no \"\(text)\" in the log of blobfs\n\(log.tail(3000))")
            }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.1)
        }
    }

    /// Waits up to `timeout` s for the daemon to exit on its own; its status, or nil.
    func waitForExit(timeout: Double) -> Int32? { process.wait(timeout: timeout) }

    @discardableResult
    func stop() -> Stopped {
        var status = process.poll()
        if status == nil {
            process.signal(SIGTERM)
            status = process.wait(timeout: 20)
            if status == nil {
                process.signal(SIGKILL)
                _ = process.wait(timeout: 10)
            }
        }
        let gone = !TestSupport.MountTable.isMounted(mountpoint)
        if !gone { _ = TestSupport.MountTable.forceUnmount(mountpoint) }
        return Stopped(status: status, mountGone: gone)
    }
}

/// A watchdog probe the test can make hang, as one hangs in a wedged FUSE mount.
final class StuckProbe: Sendable {
    private let wedged = Mutex(false)
    private let unblock = DispatchSemaphore(value: 0)
    /// Signalled when a probe starts to hang.
    let stuck = DispatchSemaphore(value: 0)

    func answer() -> Bool {
        guard wedged.withLock({ $0 }) else { return true }
        stuck.signal()
        unblock.wait()
        return true
    }

    func wedge() { wedged.withLock { $0 = true } }

    /// Lets a hanging probe (and every later one) answer.
    func release() {
        let wasWedged = wedged.withLock { wedged in
            defer { wedged = false }
            return wedged
        }
        if wasWedged { unblock.signal() }
    }
}

/// Polls `condition` (short backoff, up to 30 s).
func waitFor(_ what: String, _ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(30)
    var delay = 0.005
    while !condition() {
        guard Date() < deadline else { throw TestSupportError("waited 30 s for \(what)") }
        Thread.sleep(forTimeInterval: delay)
        delay = min(delay * 2, 0.1)
    }
}

/// The state letter of /proc/<pid>/stat ("T" for stopped), or nil.
func processState(_ pid: Int32) -> String? {
    guard let bytes = try? Posix.readFile("/proc/\(pid)/stat") else { return nil }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").first.map(String.init)
}

/// `major:minor` as mountinfo writes a device.
func majorMinor(_ device: UInt64) -> String {
    "\(((device >> 8) & 0xfff) | ((device >> 32) & 0xffff_f000)):\((device & 0xff) | ((device >> 12) & 0xffff_ff00))"
}

/// How many AF_UNIX datagram sockets the process `pid` holds (its fds matched against /proc/net/unix).
func datagramSockets(of pid: Int32) -> Int {
    let inodes = Set(
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { fd -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                target.hasPrefix("socket:[")
            else { return nil }
            return String(target.dropFirst("socket:[".count).dropLast())
        })
    let table = (try? Posix.readFile("/proc/\(pid)/net/unix")).map { String(decoding: $0, as: UTF8.self) } ?? ""
    // Num RefCount Protocol Flags Type St Inode [Path]; Type 0002 is SOCK_DGRAM.
    return table.split(separator: "\n").dropFirst().count { line in
        let columns = line.split(separator: " ")
        return columns.count >= 7 && columns[4] == "0002" && inodes.contains(String(columns[6]))
    }
}
