import CFuse
import Dispatch
import Glibc
import Logging

/// A mounted FUSE session serving a `BlobFileSystem` on libfuse's worker threads.
public final class FuseSession {
    public let fileSystem: BlobFileSystem
    /// The mountpoint, made absolute.
    public let mountpoint: String
    private let session: OpaquePointer
    private var mounted = true

    /// Creates the session and mounts it (read-only unless the options say otherwise); throws `MountError` with a one-line reason.
    public init(fileSystem: BlobFileSystem, mountpoint: String) throws {
        self.fileSystem = fileSystem
        self.mountpoint = try Mountpoint.check(mountpoint, storageRoot: nil)
        try Mountpoint.checkFuseDevice()

        var options = [
            fileSystem.options.readWrite ? "rw" : "ro", "fsname=\(Self.escapeOption(fileSystem.options.storageRoot))",
            "subtype=blobfs", "default_permissions", "auto_unmount",
        ]
        options += fileSystem.options.fuseOptions
        var args = blobfs_fuse_args_empty()
        defer { fuse_opt_free_args(&args) }
        for argument in ["blobfs", "-o", options.joined(separator: ",")] {
            guard fuse_opt_add_arg(&args, argument) == 0 else { throw MountError.sessionFailed("out of memory") }
        }
        var operations = lowLevelOperations()
        guard
            let session = fuse_session_new(
                &args, &operations, MemoryLayout<fuse_lowlevel_ops>.size, Unmanaged.passUnretained(fileSystem).toOpaque())
        else {
            throw MountError.sessionFailed("invalid mount options: \(options.joined(separator: ","))")
        }
        // The stop signals' handlers go on before the mount appears: a SIGTERM sent as soon as it
        // is there (a script, a test) then ends the loop before it starts, and the mount is
        // removed cleanly, instead of killing a daemon that has not installed them yet.
        // libfuse installs its handlers only where the disposition is the default; a daemon
        // started with `&` from a script inherits SIGINT ignored, and one spawned from a thread
        // of a Dispatch pool inherits these signals blocked. The workers inherit this thread's mask.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(signal, SIG_DFL)
            sigaddset(&stopSignals, signal)
        }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        guard fuse_set_signal_handlers(session) == 0 else {
            fuse_session_destroy(session)
            throw MountError.sessionFailed("cannot install signal handlers")
        }
        guard fuse_session_mount(session, self.mountpoint) == 0 else {
            fuse_remove_signal_handlers(session)
            fuse_session_destroy(session)
            throw MountError.mountFailed(self.mountpoint)
        }
        if fileSystem.options.passthrough == .auto {
            // The hooks go on before the loop reads the kernel's INIT, which they must see.
            fileSystem.passthrough.negotiation.setStackDepth(Self.storeIsStacked(fileSystem.options.storageRoot) ? 2 : 1)
            guard PassthroughNegotiation.install(on: session) else {
                fuse_session_unmount(session)
                fuse_remove_signal_handlers(session)
                fuse_session_destroy(session)
                throw MountError.sessionFailed("cannot install the passthrough hooks")
            }
            fileSystem.passthrough.files.attach(device: fuse_session_fd(session))
        }
        self.session = session
        fileSystem.notices.withLock { $0 = SessionNotices(session: session) }
    }

    deinit {
        fileSystem.notices.withLock { $0 = nil }
        if mounted { fuse_session_unmount(session) }
        fuse_remove_signal_handlers(session)
        fuse_session_destroy(session)
    }

    /// Serves requests until the filesystem is unmounted or the process gets SIGINT, SIGTERM or
    /// SIGHUP; then unmounts. Returns normally on a clean stop. `serving` is called once, from
    /// another thread, when the kernel's INIT exchange is done, with whether reads go through
    /// kernel passthrough ("on", or "off (why)"). `stopping` is called on this thread once the
    /// loop has ended (a signal, or an unmount from outside), before the session waits for opens
    /// still hashing and unmounts.
    public func run(serving: (@Sendable (_ passthrough: String) -> Void)? = nil, stopping: (() -> Void)? = nil) throws {
        afterInit(serving)
        let config = fuse_loop_cfg_create()
        defer { fuse_loop_cfg_destroy(config) }
        fuse_loop_cfg_set_max_threads(config, UInt32(max(1, fileSystem.options.maxThreads)))
        let status = fuse_session_loop_mt(session, config)
        stopping?()
        // An open still hashing holds a request of this session: it replies (the kernel is gone,
        // so the reply fails harmlessly) before the session can be destroyed.
        fileSystem.passthrough.deferredOpens.wait()
        fuse_session_unmount(session)
        mounted = false
        fileSystem.cancelUploads()
        fileSystem.logger.info("served: \(fileSystem.passthrough.summary)")
        // A positive status is the signal that stopped the loop: a clean stop.
        if status < 0 {
            throw MountError.sessionFailed("the FUSE loop failed: \(String(cString: strerror(-status)))")
        }
    }

    // MARK: - Helpers

    /// What waits for the kernel's INIT exchange, on a helper thread that first waits for a
    /// request to be answered (a stat of the mountpoint): whether the kernel lets this daemon
    /// register backing files, the readahead, and `serving`.
    private func afterInit(_ serving: (@Sendable (String) -> Void)?) {
        let mountpoint = self.mountpoint
        let fileSystem = self.fileSystem
        DispatchQueue.global().async {
            var st = Glibc.stat()
            let answered = fstatat(AT_FDCWD, mountpoint, &st, 0) == 0
            if answered && fileSystem.passthrough.isTracking { fileSystem.passthrough.files.probe() }
            if answered { Self.raiseReadAhead(of: mountpoint, fileSystem) }
            serving?(fileSystem.passthrough.status)
        }
    }

    /// Raises the mount's readahead so that reads reach the daemon as 1 MiB requests instead of
    /// 128 KiB. It must happen after the kernel's INIT exchange (which can only lower it).
    private static func raiseReadAhead(of mountpoint: String, _ fileSystem: BlobFileSystem) {
        guard let kib = fileSystem.options.readAheadKiB else { return }
        let logger = fileSystem.logger
        guard let device = MountTable.device(of: mountpoint) else { return }
        let path = "/sys/class/bdi/\(device)/read_ahead_kb"
        let fd = Glibc.open(path, O_WRONLY)
        guard fd >= 0 else {
            logger.debug("cannot raise readahead", metadata: ["path": "\(path)", "errno": "\(errno)"])
            return
        }
        defer { Glibc.close(fd) }
        let text = Array("\(kib)\n".utf8)
        if Glibc.write(fd, text, text.count) != text.count {
            logger.debug("cannot raise readahead", metadata: ["path": "\(path)", "errno": "\(errno)"])
        }
    }

    /// Whether the store is on overlayfs: a backing file there is one level deep in the kernel's
    /// stacking already, so passthrough needs `max_stack_depth` 2 (and the mount can then not be
    /// an overlay's lower layer).
    private static func storeIsStacked(_ root: String) -> Bool {
        var type = 0
        return blobfs_filesystem_type(root, &type) == 0 && type == BLOBFS_OVERLAYFS_SUPER_MAGIC
    }

    /// libfuse splits options on commas; a backslash escapes one.
    private static func escapeOption(_ value: String) -> String {
        value.reduce(into: "") { escaped, c in
            if c == "\\" || c == "," { escaped.append("\\") }
            escaped.append(c)
        }
    }
}
