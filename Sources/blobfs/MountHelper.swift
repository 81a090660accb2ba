import Glibc

/// The mount.fuse form, `blobfs <storage-root> <mountpoint> [-o options]`: how `mount -t
/// fuse.blobfs` and /etc/fstab run blobfs (through mount.fuse3). It checks the options, starts
/// `blobfs mount … --ready-fd 3` in the background and exits 0 once that process reports the
/// mount is up, or relays its errors and exits 1. The background process is started with
/// posix_spawn in a new session, standard input and output on /dev/null and standard error on
/// the readiness pipe until the mount is up: never fork() a threaded Swift process.
enum MountHelper {
    static let usage = """
        usage: blobfs <storage-root> <mountpoint> [-o <options>] [-f]
          The form mount(8) uses: mount -t fuse.blobfs <storage-root> <mountpoint> -o ro
          Mounts (read-only unless -o rw) in the background and returns once the mount is ready; -f stays in the
          foreground. The options are those of blobfs mount -o (see blobfs mount --help);
          log=<file> keeps the background process's log, which otherwise goes nowhere.
        """

    /// The file descriptor the background process reports on.
    static let readyFD: Int32 = 3

    /// What the command line asks for.
    struct Invocation {
        var source: String
        var mountpoint: String
        var options: [String]
        var foreground: Bool
    }

    /// Whether the arguments are the mount.fuse form: a first argument that is neither an
    /// option nor a subcommand.
    static func isInvocation(_ arguments: [String], subcommands: Set<String>) -> Bool {
        guard let first = arguments.first else { return false }
        return !first.hasPrefix("-") && !subcommands.contains(first)
    }

    static func main(_ arguments: [String]) -> Never {
        if arguments.count == 1 && !arguments[0].contains("/") {
            // A lone word is a mistyped command more likely than half of a mount.
            writeStandardError("blobfs: unknown command \"\(arguments[0])\" (blobfs --help lists the commands)\n")
            exit(2)
        }
        do throws(CommandFailure) {
            guard let invocation = try parse(arguments) else {
                print(usage)
                exit(0)
            }
            let options = invocation.options.map(absolutePaths)
            // Refuse bad options here, before anything is started.
            _ = try MountOptionList(parsing: options)
            let optionArguments = options.isEmpty ? [] : ["-o", options.joined(separator: ",")]
            let source = S3StoreSettings.isS3(invocation.source) ? invocation.source : absolute(invocation.source)
            let paths = ["--", source, absolute(invocation.mountpoint)]
            if invocation.foreground {
                Blobfs.runAsRoot(["mount"] + optionArguments + paths)
            }
            try spawnAndWait(["mount", "--ready-fd", "\(readyFD)"] + optionArguments + paths)
            exit(0)
        } catch {
            writeStandardError("blobfs: \(error.message)\n")
            if error.exitCode == 2 { writeStandardError(usage + "\n") }
            exit(error.exitCode)
        }
    }

    /// Parses `<source> <mountpoint>`, `-o <options>` (repeatable, also `-o<options>`) and `-f`;
    /// nil for `-h`. mount(8)'s `-s`, `-n` and `-v` are accepted and ignored.
    static func parse(_ arguments: [String]) throws(CommandFailure) -> Invocation? {
        var positionals: [String] = []
        var options: [String] = []
        var foreground = false
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" {
                positionals.append(argument)
            } else if argument == "--" {
                onlyPositionals = true
            } else if argument == "-o" {
                guard index < arguments.count else { throw .usage("-o needs a list of options") }
                options.append(arguments[index])
                index += 1
            } else if argument.hasPrefix("-o") {
                options.append(String(argument.dropFirst(2)))
            } else if argument == "-f" || argument == "--foreground" {
                foreground = true
            } else if argument == "-h" || argument == "--help" {
                return nil
            } else if !["-s", "-n", "-v"].contains(argument) {
                throw .usage("unknown option \(argument)")
            }
        }
        guard positionals.count == 2 else {
            throw .usage(
                "expected a storage root and a mountpoint, got \(positionals.count) argument\(positionals.count == 1 ? "" : "s")")
        }
        return Invocation(source: positionals[0], mountpoint: positionals[1], options: options, foreground: foreground)
    }

    /// Starts the background mount and waits for its report on the pipe.
    static func spawnAndWait(_ arguments: [String]) throws(CommandFailure) {
        closeInheritedDescriptorsOnExec()
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw CommandFailure("cannot create a pipe: \(systemError(errno))") }
        let readEnd = ends[0]
        defer { close(readEnd) }
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)  // only this process waits on it (pipe2 is a GNU extension that does not import)
        // Above the standard descriptors and 3, so that dup2 onto 3 always makes a new descriptor
        // (one without close-on-exec) even when some of 0–2 were closed.
        let writeEnd = fcntl(ends[1], F_DUPFD_CLOEXEC, 10)
        close(ends[1])
        guard writeEnd >= 0 else { throw CommandFailure("cannot create a pipe: \(systemError(errno))") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, readyFD)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Default dispositions and an empty mask: mount(8) or a shell may have ignored or blocked
        // SIGINT/SIGTERM, and the daemon must stop on them.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | posixSpawnSetSID)

        let argv = ([CommandLine.arguments.first ?? "blobfs"] + arguments).map { strdup($0) } + [nil]
        // Not systemd's notification variables: the daemon started here is not the main process
        // of any notify unit (mount(8) is, or a mount unit), so what it would send is dropped or
        // misread; `blobfs mount` itself is what a Type=notify unit runs.
        let notifyVariables = ["NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="]
        let environment = currentEnvironment().filter { variable in !notifyVariables.contains { variable.hasPrefix($0) } }.map { strdup($0) } + [nil]
        defer { (argv + environment).forEach { free($0) } }
        var pid = pid_t()
        // /proc/self/exe is this very binary, even if its file was replaced since it started.
        let started = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, environment)
        close(writeEnd)
        guard started == 0 else { throw CommandFailure("cannot start the mount process: \(systemError(started))") }

        // The child's standard error until the ready byte; all of it if the pipe closes first.
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if let ready = chunk[..<n].firstIndex(of: ReadinessPipe.readyByte) {
                output += chunk[..<ready]
                writeStandardError(String(decoding: output, as: UTF8.self))  // warnings, if any
                return  // mounted; the process stays
            }
            output += chunk[..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard !output.isEmpty else {
            throw CommandFailure("the mount process \(describe(status: status)) before the mount was ready")
        }
        // Its own `blobfs: …` line is among what it printed.
        writeStandardError(String(decoding: output, as: UTF8.self))
        exit(1)
    }

    /// Marks every descriptor above 2 that this process inherited close-on-exec, so the daemon
    /// does not keep the caller's pipes open: `out=$(mount …)` would wait for it forever.
    static func closeInheritedDescriptorsOnExec() {
        guard let directory = opendir("/proc/self/fd") else { return }
        var descriptors: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if let fd = Int32(name), fd > 2 { descriptors.append(fd) }
        }
        closedir(directory)
        for fd in descriptors { _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) }
    }

    /// `exited with status 1`, `was killed by signal 9` (the W* macros do not import).
    static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
    }

    /// The environment this process started with (the C global `environ` is off limits in Swift 6).
    static func currentEnvironment() -> [String] {
        guard let text = try? readTextFile("/proc/self/environ") else { return [] }
        return text.split(separator: "\0").map(String.init)
    }

    /// The background process runs in `/`, so paths become absolute here.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        let directory = String(cString: cwd)
        return (directory == "/" ? "" : directory) + "/" + path
    }

    /// `log=` and `config=` values made absolute, within one `-o` list.
    static func absolutePaths(_ list: String) -> String {
        list.split(separator: ",", omittingEmptySubsequences: false).map { item in
            for key in ["log=", "config=", "s3_credentials_file="] where item.hasPrefix(key) && item.count > key.count {
                return key + absolute(String(item.dropFirst(key.count)))
            }
            return String(item)
        }.joined(separator: ",")
    }
}

/// glibc's POSIX_SPAWN_SETSID (spawn.h), which does not import: a GNU extension behind _GNU_SOURCE.
let posixSpawnSetSID: Int16 = 0x80
