import Foundation
import Glibc
import Synchronization
import Testing

/// Where the `blobfs` executable under test is: next to the test binary SwiftPM built
/// (`.build/<triple>/debug/blobfs` beside `blobfsPackageTests.xctest`), or `$BLOBFS_EXECUTABLE`.
public enum BlobfsExecutable {
    public static func path() throws -> String {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["BLOBFS_EXECUTABLE"], !override.isEmpty {
            candidates.append(override)
        }
        for binary in [try? Posix.realPath("/proc/self/exe"), CommandLine.arguments.first].compactMap({ $0 }) {
            var directory = (binary as NSString).deletingLastPathComponent
            // A bundle-style .xctest (a directory, as on macOS): the products are beside the bundle.
            while let range = directory.range(of: ".xctest", options: .backwards) {
                directory = (String(directory[..<range.lowerBound]) as NSString).deletingLastPathComponent
            }
            candidates.append(directory + "/blobfs")
        }
        for candidate in candidates {
            var info = Glibc.stat()
            if fstatat(AT_FDCWD, candidate, &info, 0) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw TestSupportError(
            "the blobfs executable is missing; looked at \(candidates.joined(separator: ", ")). "
                + "Build it with `swift build --build-tests` (the mount tests run the real executable), "
                + "or point BLOBFS_EXECUTABLE at it.")
    }

    /// The directory holding `blobfs`, for a PATH that `mount -t fuse.blobfs` searches.
    public static func directory() throws -> String {
        (try path() as NSString).deletingLastPathComponent
    }
}

/// How a `blobfs mount` daemon ended.
public struct BlobfsStopResult: Sendable, CustomStringConvertible {
    /// Exit status, or minus the signal number (-9 when we had to SIGKILL it).
    public var status: Int32
    /// Whether it exited on its own within the deadline after SIGTERM.
    public var exitedInTime: Bool
    /// Whether the mount was gone when the daemon had exited (before any cleanup of ours).
    public var mountGoneAtExit: Bool
    /// What we had to do to get rid of the mount ourselves (empty when the daemon did it).
    public var forcedSteps: [String]

    /// Exit 0 in time, mount removed by the daemon itself.
    public var isClean: Bool { status == 0 && exitedInTime && mountGoneAtExit && forcedSteps.isEmpty }

    public var description: String {
        "exit status \(status), \(exitedInTime ? "exited in time" : "had to be killed"), "
            + "\(mountGoneAtExit ? "mount gone at exit" : "MOUNT STILL THERE AT EXIT")"
            + (forcedSteps.isEmpty ? "" : ", forced cleanup: \(forcedSteps.joined(separator: "; "))")
    }
}

/// A `blobfs mount <root> <mountpoint> …` daemon started by a test. The initializer returns once
/// the mount is in /proc/self/mountinfo (polling, never a fixed sleep); `stop()` sends SIGTERM and
/// reports how it ended; whatever happens, the mount is removed before this object goes away.
public final class BlobfsMount: @unchecked Sendable {
    public let root: String
    public let mountpoint: String
    public let arguments: [String]
    /// The mount as /proc/self/mountinfo showed it once it appeared.
    public let entry: MountEntry
    private let process: ChildProcess
    private let scratch: TemporaryDirectory
    private let logPath: String
    private let stopResult = Mutex<BlobfsStopResult?>(nil)

    /// Starts `blobfs mount root mountpoint options…` and waits (up to `timeout` s) for the mount.
    public init(root: String, mountpoint: String, options: [String] = [], timeout: Double = 20) throws {
        self.root = root
        self.mountpoint = MountTable.normalized(mountpoint)
        let executable = try BlobfsExecutable.path()
        arguments = ["mount", root, mountpoint] + options + Self.passthroughFromEnvironment(unlessIn: options)
        scratch = try TemporaryDirectory(prefix: "blobfs-daemon")
        logPath = scratch.path + "/blobfs.log"
        if MountTable.isMounted(self.mountpoint) {
            throw TestSupportError("\(mountpoint) is already a mountpoint before blobfs started: \(MountTable.entry(at: mountpoint)!)")
        }

        process = try ChildProcess(executable: executable, arguments: arguments, stdoutPath: logPath, stderrPath: logPath)
        let commandLine = process.commandLine
        let deadline = Date().addingTimeInterval(timeout)
        var delay = 0.005
        while true {
            if let found = MountTable.entry(at: self.mountpoint), found.fileSystemType.hasPrefix("fuse") {
                entry = found
                return
            }
            if let status = process.poll() {
                let cleanup = MountTable.forceUnmount(self.mountpoint)
                throw TestSupportError(
                    "`\(commandLine)` exited with status \(status) before the mount appeared"
                        + (cleanup.isEmpty ? "" : " (cleanup: \(cleanup))") + "\n--- blobfs log ---\n\(Self.read(logPath).tail(4000))")
            }
            if Date() >= deadline {
                process.signal(SIGKILL)
                _ = process.wait(timeout: 10)
                let cleanup = MountTable.forceUnmount(self.mountpoint)
                throw TestSupportError(
                    "`\(commandLine)`: no FUSE mount at \(self.mountpoint) after \(timeout) s; killed it"
                        + (cleanup.isEmpty ? "" : " (cleanup: \(cleanup))") + "\n--- blobfs log ---\n\(Self.read(logPath).tail(4000))")
            }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.1)
        }
    }

    deinit {
        _ = stop()
    }

    /// `BLOBFS_TEST_PASSTHROUGH=off` (or `auto`) runs every mount of the suite with that
    /// `--passthrough`, unless the test chose one itself.
    private static func passthroughFromEnvironment(unlessIn options: [String]) -> [String] {
        guard let mode = ProcessInfo.processInfo.environment["BLOBFS_TEST_PASSTHROUGH"], !mode.isEmpty,
            !options.contains(where: { $0 == "--passthrough" || $0.contains("passthrough=") })
        else { return [] }
        return ["--passthrough", mode]
    }

    /// The daemon's process id.
    public var pid: Int32 { process.pid }
    public var isRunning: Bool { process.isRunning }

    /// Everything the daemon printed so far (stdout and stderr).
    public var log: String { Self.read(logPath) }

    /// The path of `relative` inside the mount ("repo/library/alpine/blobs/sha256:…").
    public func path(_ relative: String) -> String {
        mountpoint + "/" + relative
    }

    /// The daemon's blocked and ignored signal masks (from /proc), for messages about a daemon
    /// that did not react to SIGTERM.
    public var signalMasks: String {
        guard let status = try? readBytes("/proc/\(process.pid)/status") else { return "no /proc entry" }
        return String(decoding: status, as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix("SigBlk") || $0.hasPrefix("SigIgn") || $0.hasPrefix("SigCgt") || $0.hasPrefix("Threads") }
            .map { $0.replacingOccurrences(of: "\t", with: " ") }.joined(separator: ", ")
    }

    /// Sends a signal to the daemon (only ours: the pid of the process this object started).
    public func signal(_ number: Int32) {
        process.signal(number)
    }

    /// Waits up to `timeout` s for the daemon to exit on its own (after an external umount, say);
    /// its exit status, or nil if it is still running.
    public func waitForExit(timeout: Double) -> Int32? {
        process.wait(timeout: timeout)
    }

    /// SIGTERM, wait up to `timeout` s for the exit, SIGKILL if needed; then make sure the mount is
    /// gone (`fusermount3 -u -z`, `umount -l`). Idempotent: later calls return the first result.
    @discardableResult
    public func stop(timeout: Double = 20) -> BlobfsStopResult {
        stopResult.withLock { result in
            if let result { return result }
            var exitedInTime = true
            var stuckMasks = ""
            var status = process.poll()
            if status == nil {
                process.signal(SIGTERM)
                status = process.wait(timeout: timeout)
                if status == nil {
                    exitedInTime = false
                    stuckMasks = signalMasks
                    process.signal(SIGKILL)
                    status = process.wait(timeout: 10)
                }
            }
            let gone = !MountTable.isMounted(mountpoint)
            let steps = gone ? [] : MountTable.forceUnmount(mountpoint)
            let exitStatus = status ?? -SIGKILL
            let stopped = BlobfsStopResult(
                status: exitStatus, exitedInTime: exitedInTime, mountGoneAtExit: gone,
                forcedSteps: (stuckMasks.isEmpty ? [] : ["SIGKILL after \(timeout) s (daemon then had \(stuckMasks))"]) + steps)
            result = stopped
            return stopped
        }
    }

    /// Mounts, runs `body`, and stops the daemon however `body` ends. With `expectCleanStop`, a stop
    /// that was not clean (exit status not 0, mount left behind) is recorded as a test issue.
    public static func withMount<T>(
        root: String, mountpoint: String, options: [String] = [], expectCleanStop: Bool = true,
        sourceLocation: SourceLocation = #_sourceLocation, _ body: (BlobfsMount) throws -> T
    ) throws -> T {
        let mount = try BlobfsMount(root: root, mountpoint: mountpoint, options: options)
        let result: T
        do {
            result = try body(mount)
        } catch {
            let stopped = mount.stop()
            if !stopped.isClean {
                Issue.record("blobfs also did not stop cleanly: \(stopped)\n--- blobfs log ---\n\(mount.log.tail(3000))", sourceLocation: sourceLocation)
            }
            throw error
        }
        let stopped = mount.stop()
        if expectCleanStop && !stopped.isClean {
            Issue.record(
                "blobfs did not stop cleanly on SIGTERM: \(stopped)\n--- blobfs log ---\n\(mount.log.tail(3000))",
                sourceLocation: sourceLocation)
        }
        return result
    }

    private static func read(_ path: String) -> String {
        (try? readBytes(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// Processes found through /proc, for daemons we started indirectly (`mount -t fuse.blobfs` runs
/// mount.fuse, which runs blobfs, which goes to the background).
public enum ProcessTable {
    /// Pids of live `blobfs` processes whose command line has `argument` as one whole argument
    /// (a test's unique temporary mountpoint, so nobody else's processes can match).
    public static func blobfsProcesses(withArgument argument: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry), isAlive(pid),
                let raw = try? readBytes("/proc/\(pid)/cmdline"), !raw.isEmpty
            else { continue }
            let arguments = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
            guard (executable as NSString).lastPathComponent == "blobfs" || ((arguments.first ?? "") as NSString).lastPathComponent == "blobfs"
            else { continue }
            if arguments.contains(argument) { found.append(pid) }
        }
        return found
    }

    /// Whether `pid` exists and is not a zombie (an exited child nobody reaped yet counts as gone).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? readBytes("/proc/\(pid)/stat") else { return false }
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        let state = text[text.index(after: close)...].trimmingPrefix(" ").first
        return state != "Z" && state != "X"
    }
}
