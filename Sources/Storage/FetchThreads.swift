import Dispatch
import Foundation

/// Threads of their own for work that blocks on the network (ranged GETs): libdispatch's pools
/// size themselves to the CPUs and add a thread for a blocked one only after a delay (measured
/// here: eight openers waiting on one another took 11 s on a queue, milliseconds on threads), so a
/// fetch's parallel reads on a 2-CPU machine would run two at a time. The mount's opens that wait
/// for a fetch run on them too (BlobFS's open shell).
public enum FetchThreads {
    /// Runs `body(0..<count)` each on a thread (the caller's for the last) and returns when all
    /// have.
    static func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let group = DispatchGroup()
        for index in 0..<(count - 1) {
            group.enter()
            Thread.detachNewThread {
                body(index)
                group.leave()
            }
        }
        body(count - 1)
        group.wait()
    }

    /// Starts `body` on a thread of its own.
    public static func start(_ body: @escaping @Sendable () -> Void) {
        Thread.detachNewThread(body)
    }
}
