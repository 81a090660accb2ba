import Foundation
import Glibc
import Synchronization

/// A child process started with posix_spawn the way a shell or systemd would start it: an empty
/// signal mask and default signal dispositions. (Foundation's Process passes on the calling
/// thread's mask, and the test runner's threads block SIGTERM, so a daemon started through it
/// could never see the SIGTERM a test sends.) Reaped with waitpid on this pid only.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let commandLine: String
    /// The raw wait status once reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`. stdin is `stdinPath` or /dev/null; stdout goes to
    /// `stdoutPath`, stderr to `stderrPath` (the same file when they are equal). Descriptors 3 and
    /// up are not inherited.
    public init(
        executable: String, arguments: [String], environment: [String: String] = [:], stdinPath: String? = nil,
        stdoutPath: String, stderrPath: String
    ) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if stderrPath == stdoutPath {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        Self.closeFrom3(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw TestSupportError("cannot start \(commandLine): \(Errno(result))")
        }
        pid = child
    }

    deinit {
        if poll() == nil {
            kill(pid, SIGKILL)
            _ = wait(timeout: 10)
        }
    }

    /// The exit status (minus the signal number if a signal ended it) once the process has
    /// exited, reaping it; nil while it runs.
    public func poll() -> Int32? {
        reaped.withLock { reaped in
            if reaped == nil {
                var status: Int32 = 0
                let result = waitpid(pid, &status, WNOHANG)
                if result == pid { reaped = status }
            }
            return reaped.map(Self.decode)
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// Waits up to `timeout` seconds (short backoff); the status, or nil if still running.
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var delay = 0.002
        while true {
            if let status = poll() { return status }
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.05)
        }
    }

    /// Sends `number` to this child, unless it has already been reaped (its pid may be reused).
    public func signal(_ number: Int32) {
        reaped.withLock { reaped in
            if reaped == nil { kill(pid, number) }
        }
    }

    /// WIFEXITED ? WEXITSTATUS : -WTERMSIG.
    private static func decode(_ status: Int32) -> Int32 {
        status & 0x7f == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
    }

    /// posix_spawn_file_actions_addclosefrom_np (glibc 2.34, not in the Glibc module), if present.
    private static func closeFrom3(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }
}
