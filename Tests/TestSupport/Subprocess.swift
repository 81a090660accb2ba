import Foundation

/// What a finished child process left behind.
struct ProcessOutput {
    /// The exit status, or minus the signal number if a signal ended it.
    var status: Int32
    var stdout: [UInt8]
    var stderr: [UInt8]

    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs a program to completion. Output goes through files, not pipes, so a chatty child can never
/// block on a full pipe while we wait for it; stdin is a file or /dev/null, so no SIGPIPE can reach us.
func runProcess(_ executable: String, _ arguments: [String], stdinPath: String? = nil) throws -> ProcessOutput {
    let scratch = try TemporaryDirectory(prefix: "blobfs-proc")
    let outPath = scratch.path + "/stdout"
    let errPath = scratch.path + "/stderr"
    let stdout = try createWriteHandle(outPath)
    defer { try? stdout.close() }
    let stderr = try createWriteHandle(errPath)
    defer { try? stderr.close() }
    let stdin: FileHandle
    if let stdinPath {
        // Close-on-exec (Process gives the child its own copy as stdin): a process another test
        // starts meanwhile must not inherit it. A file of a mount left open in such a child keeps
        // the kernel's passthrough mode on its inode, and a later write open of it fails (EIO).
        guard case .success(let fd) = Posix.open(stdinPath, O_RDONLY) else {
            throw TestSupportError("cannot open \(stdinPath) as stdin for \(executable)")
        }
        stdin = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    } else {
        stdin = FileHandle.nullDevice
    }
    defer { if stdinPath != nil { try? stdin.close() } }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    do {
        try process.run()
    } catch {
        throw TestSupportError("cannot start \(executable): \(error)")
    }
    process.waitUntilExit()
    let status = process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
    return ProcessOutput(status: status, stdout: try readBytes(outPath), stderr: try readBytes(errPath))
}

/// Creates (or truncates) a file and opens it for writing.
func createWriteHandle(_ path: String) throws -> FileHandle {
    guard FileManager.default.createFile(atPath: path, contents: nil),
        let handle = FileHandle(forWritingAtPath: path)
    else {
        throw TestSupportError("cannot create \(path)")
    }
    return handle
}

/// The whole content of a file.
func readBytes(_ path: String) throws -> [UInt8] {
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw TestSupportError("cannot read \(path): \(error)")
    }
}

/// Writes bytes to a new file.
func writeBytes(_ bytes: [UInt8], to path: String) throws {
    do {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    } catch {
        throw TestSupportError("cannot write \(path): \(error)")
    }
}
