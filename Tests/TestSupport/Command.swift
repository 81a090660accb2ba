import Foundation
import Glibc

/// What a finished command left behind: exit status and both outputs.
public struct CommandResult: Sendable, CustomStringConvertible {
    /// The command line as run, for messages.
    public var commandLine: String
    /// The exit status, or minus the signal number if a signal ended it.
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// The command line, its status and the (shortened) outputs: what a failed expectation should show.
    public var description: String {
        "`\(commandLine)` exited with \(status)\n--- stdout ---\n\(stdoutText.tail(3000))\n--- stderr ---\n\(stderrText.tail(3000))"
    }
}

/// Runs real tools (cp, rsync, tar, sha256sum, mount…) for the mount tests. Output goes to files,
/// never pipes, so a chatty child cannot block; every run has a deadline, so a hung FUSE request
/// fails a test instead of hanging the whole run.
public enum Command {
    /// Finds `name` in PATH (or takes it as given if it contains a slash).
    public static func which(_ name: String) throws -> String {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in (path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw TestSupportError("\(name) is not installed (not found in PATH \(path)); `make deps` installs the test tools")
    }

    /// Runs `tool` (a name looked up in PATH, or a path) with `arguments` to completion, or kills it
    /// after `timeout` seconds and throws. `environment` entries replace inherited ones.
    public static func run(
        _ tool: String, _ arguments: [String], environment: [String: String] = [:], stdinPath: String? = nil,
        workingDirectory: String? = nil, timeout: Double = 60
    ) throws -> CommandResult {
        let running = try start(
            tool, arguments, environment: environment, stdinPath: stdinPath, workingDirectory: workingDirectory)
        return try running.wait(timeout: timeout)
    }

    /// Starts `tool` without waiting; `wait(timeout:)` collects it.
    public static func start(
        _ tool: String, _ arguments: [String], environment: [String: String] = [:], stdinPath: String? = nil,
        workingDirectory: String? = nil
    ) throws -> RunningCommand {
        try RunningCommand(
            executable: try which(tool), arguments: arguments, environment: environment, stdinPath: stdinPath,
            workingDirectory: workingDirectory)
    }
}

/// A child process started by `Command.start`, with its output files.
public final class RunningCommand: @unchecked Sendable {
    public let commandLine: String
    private let child: ChildProcess
    private let scratch: TemporaryDirectory

    init(executable: String, arguments: [String], environment: [String: String], stdinPath: String?, workingDirectory: String?)
        throws
    {
        scratch = try TemporaryDirectory(prefix: "blobfs-cmd")
        var executable = executable
        var arguments = arguments
        if let workingDirectory {
            // posix_spawn has no portable chdir action: let env(1) change directory.
            arguments = ["-C", workingDirectory, executable] + arguments
            executable = "/usr/bin/env"
        }
        var environment = environment
        if environment["LC_ALL"] == nil { environment["LC_ALL"] = "C" }  // messages ("Input/output error") in English
        child = try ChildProcess(
            executable: executable, arguments: arguments, environment: environment, stdinPath: stdinPath,
            stdoutPath: scratch.path + "/stdout", stderrPath: scratch.path + "/stderr")
        commandLine = child.commandLine
    }

    public var pid: Int32 { child.pid }
    public var isRunning: Bool { child.isRunning }

    /// Waits up to `timeout` seconds; a command still running then is killed and reported as an error
    /// with what it printed so far.
    public func wait(timeout: Double) throws -> CommandResult {
        guard let status = child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            let died = child.wait(timeout: 5) != nil
            let output = outputs()
            throw TestSupportError(
                "`\(commandLine)` did not finish within \(timeout) s and was killed\(died ? "" : " (it did not even die: stuck in the kernel, probably a FUSE request the daemon never answered)")"
                    + "\n--- stdout ---\n\(String(decoding: output.stdout, as: UTF8.self).tail(2000))\n--- stderr ---\n\(String(decoding: output.stderr, as: UTF8.self).tail(2000))")
        }
        let output = outputs()
        return CommandResult(commandLine: commandLine, status: status, stdout: output.stdout, stderr: output.stderr)
    }

    private func outputs() -> (stdout: [UInt8], stderr: [UInt8]) {
        ((try? readBytes(scratch.path + "/stdout")) ?? [], (try? readBytes(scratch.path + "/stderr")) ?? [])
    }
}

extension String {
    /// The last `count` characters, marked when something was cut, so failure messages stay readable.
    public func tail(_ count: Int) -> String {
        self.count <= count ? self : "…" + String(suffix(count))
    }
}
