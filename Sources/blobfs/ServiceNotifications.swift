import BlobFS
import Glibc
import Logging
import Synchronization

/// What `blobfs mount` tells systemd when a `Type=notify` unit started it (`NOTIFY_SOCKET` set;
/// otherwise nothing at all): `READY=1` with a status line once the mount answers, `WATCHDOG=1`
/// while it keeps answering (when the unit sets `WatchdogSec=`), `STOPPING=1` when the FUSE loop
/// ends. See docs/architecture.md, "systemd".
final class ServiceNotifications: Sendable {
    private let notifier: SystemdNotifier?
    private let watchdogInterval: Duration?
    private let logger: Logger
    /// Taken before the watchdog's lock and the notifier's, never the other way; held around
    /// non-blocking sends only. Whether the loop has ended, and the watchdog once started.
    private let state = Mutex(State())

    private struct State {
        var stopped = false
        var watchdog: SystemdWatchdog?
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from this process's environment.
    init(logger: Logger) {
        var environment: [String: String] = [:]
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        self.logger = logger
        notifier = SystemdNotifier(environment: environment, logger: logger)
        watchdogInterval = SystemdWatchdog.interval(environment: environment, pid: getpid())
        if notifier == nil && watchdogInterval != nil {
            logger.warning("WATCHDOG_USEC is set but NOTIFY_SOCKET is not: no watchdog pings")
        }
    }

    /// The kernel's INIT exchange is done: once a request to `mountpoint` comes back from this
    /// daemon's own loop, `READY=1` with `status`, and the watchdog starts. Blocks while the mount
    /// does not answer: call it on a helper thread (`FuseSession.run`'s `serving`).
    func serving(mountpoint: String, status: String) {
        guard let notifier else { return }
        guard let probe = MountProbe.answering(at: mountpoint) else {
            // systemd's start timeout then fails the unit: the mount is not serving.
            logger.error("the mount does not answer: not telling systemd it is ready", metadata: ["mountpoint": "\(mountpoint)"])
            return
        }
        state.withLock { state in
            guard !state.stopped else { return }
            notifier.ready(status: status)
            if let interval = watchdogInterval {
                state.watchdog = SystemdWatchdog(interval: interval, notifier: notifier, alive: { probe.answers() })
            }
        }
    }

    /// The FUSE loop has ended: no more watchdog pings, `STOPPING=1`.
    func stopping(mountpoint: String) {
        guard let notifier else { return }
        state.withLock { state in
            state.stopped = true
            state.watchdog?.stop()
            state.watchdog = nil
            notifier.send(["STOPPING=1", "STATUS=unmounting \(mountpoint)"])
        }
    }
}
