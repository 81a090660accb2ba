import Dispatch
import Synchronization

/// systemd's watchdog (`WatchdogSec=` in the unit): `WATCHDOG=1` every half of `WATCHDOG_USEC`,
/// each one only after `alive` says the daemon is serving. With `MountProbe.answers` that is a
/// request that went through the FUSE loop and back, so a wedged loop (every worker stuck) stops
/// the pings and systemd restarts the daemon; a timer that pinged on its own would keep a dead
/// mount's unit "active" forever. A probe that blocks holds up only this timer's queue (its
/// later ticks coalesce); `stop` does not wait for it.
public final class SystemdWatchdog: Sendable {
    /// Half the watchdog timeout: systemd's advice for the ping interval.
    public let interval: Duration
    private let gate: Gate

    /// The interval `WATCHDOG_USEC` asks for, when it is set, positive, and meant for this process:
    /// `WATCHDOG_PID`, when set, must be `pid` (a child inheriting the variables must not ping).
    public static func interval(environment: [String: String], pid: Int32) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], !owner.isEmpty, Int32(owner) != pid { return nil }
        return .microseconds(microseconds / 2)
    }

    /// Starts pinging at `interval` through `notifier`, each ping after `alive()` returned true.
    public init(interval: Duration, notifier: SystemdNotifier, alive: @escaping @Sendable () -> Bool) {
        self.interval = interval
        let nanoseconds = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
        let gate = Gate()
        self.gate = gate
        gate.state.withLock { state in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "blobfs.watchdog"))
            timer.schedule(
                deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds), leeway: .nanoseconds(nanoseconds / 20))
            timer.setEventHandler {
                guard !gate.state.withLock({ $0.stopped }), alive() else { return }
                gate.state.withLock { state in
                    if !state.stopped { notifier.watchdog() }
                }
            }
            timer.resume()
            state.timer = timer
        }
    }

    /// No ping goes out once this returns.
    public func stop() {
        gate.state.withLock { state in
            state.stopped = true
            state.timer?.cancel()
            state.timer = nil
        }
    }

    deinit { stop() }

    private final class Gate: Sendable {
        /// Taken before the notifier's lock, never the other way; no other lock inside it: whether
        /// pings still go out, checked and sent under it so that none follows `stop`, and the
        /// timer to cancel.
        let state = Mutex(State())
    }

    private struct State {
        var stopped = false
        var timer: (any DispatchSourceTimer)?
    }
}
