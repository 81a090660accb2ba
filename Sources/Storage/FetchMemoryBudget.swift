import Dispatch
import Synchronization

/// One process-wide bound on blob data in flight from a remote driver: every block buffer of a
/// stream through the read-ahead window (`ReadAheadReader`) takes its bytes here before its GET
/// and gives them back once nothing holds the block. (A cache fetch, `BlobFetch`, writes each
/// GET's body into its file as it arrives and holds no block: it takes nothing here.) Without
/// it each open brought its own window (4 blocks of 4 MiB), so 100 readers of a blob larger than
/// the cache held 1.6 GiB. docs/architecture.md, "Blob cache".
///
/// Two ways to take bytes:
/// - `acquire` — the block a read cannot go on without. It waits, in turn (first come, first
///   served: a reader that gives a block back and asks again cannot overtake a waiting one),
///   until the bytes fit, and gives up at its deadline, so nothing waits for ever.
/// - `acquireAhead` — read-ahead. Never waits: it succeeds only when
///   nobody is waiting and `reserve` bytes stay free after it; otherwise the caller fetches fewer
///   blocks at once. So what readers hold speculatively can never take the last `reserve` bytes,
///   which only the blocks that reads wait for can.
///
/// Why waiting cannot deadlock: a reader that waits here first drops every block it holds that
/// its read does not need (`ReadAheadReader` empties its window before it waits), so no waiter
/// holds budget another waiter needs; what is held is held by GETs in flight (each ends within the
/// S3 client's deadline, and its block is then consumed or dropped by a reader that is not
/// waiting here) or by readers between two reads. Only the last can keep a waiter waiting long (a
/// process that opened a blob, read a little and went idle holds its current block): that waiter
/// then fails at its deadline (EIO), it does not hang.
///
/// Lock: `state` is a leaf, never held across I/O or a wait; waiters sleep on their own semaphore
/// with no lock held.
public final class FetchMemoryBudget: Sendable {
    /// Bytes of block buffers that may exist at once.
    public let limit: Int
    /// Kept free of read-ahead: only blocks a read waits for may use the last `reserve` bytes.
    public let reserve: Int

    private struct Waiter {
        let id: Int
        let bytes: Int
        let wake: DispatchSemaphore
    }

    private struct State {
        var inUse = 0
        var highWater = 0
        /// In order of arrival; the first is served first.
        var queue: [Waiter] = []
        /// Waiters whose bytes were taken for them by a release, not yet woken up.
        var granted: Set<Int> = []
        var nextID = 0

        /// A request larger than the whole limit fits once nothing else is held, so that a block
        /// size above the limit slows readers down to one block at a time instead of failing them.
        func fits(_ bytes: Int, limit: Int) -> Bool { inUse + bytes <= limit || inUse == 0 }

        mutating func take(_ bytes: Int) {
            inUse += bytes
            highWater = max(highWater, inUse)
        }

        /// Takes the bytes of the waiters at the head of the queue while they fit; their semaphores.
        mutating func grantQueued(limit: Int) -> [DispatchSemaphore] {
            var woken: [DispatchSemaphore] = []
            while let head = queue.first, fits(head.bytes, limit: limit) {
                take(head.bytes)
                queue.removeFirst()
                granted.insert(head.id)
                woken.append(head.wake)
            }
            return woken
        }
    }

    private let state = Mutex(State())

    /// The default: 64 MiB, four windows' worth (a fetch's 4 parallel blocks or a stream's 4
    /// read-ahead blocks of 4 MiB), which is what it takes for four transfers at once to run at
    /// full speed; with the daemon's own 20–30 MiB that keeps it well inside the 128 MiB the
    /// daemon may take while streaming (issue 14).
    public static let defaultLimit = 64 << 20

    /// `reserve` defaults to a quarter of the limit.
    public init(limit: Int = FetchMemoryBudget.defaultLimit, reserve: Int? = nil) {
        self.limit = max(limit, 1)
        self.reserve = min(max(reserve ?? self.limit / 4, 0), self.limit)
    }

    /// Takes `bytes`, waiting in turn until they fit or `deadline` passes: false then (nothing taken).
    public func acquire(_ bytes: Int, until deadline: DispatchTime) -> Bool {
        let waiter = state.withLock { state -> Waiter? in
            if state.queue.isEmpty && state.fits(bytes, limit: limit) {
                state.take(bytes)
                return nil
            }
            let waiter = Waiter(id: state.nextID, bytes: bytes, wake: DispatchSemaphore(value: 0))
            state.nextID += 1
            state.queue.append(waiter)
            return waiter
        }
        guard let waiter else { return true }
        if waiter.wake.wait(timeout: deadline) == .success {
            state.withLock { _ = $0.granted.remove(waiter.id) }
            return true
        }
        let (taken, woken) = state.withLock { state -> (Bool, [DispatchSemaphore]) in
            // Granted between the timeout and this lock: the bytes are this caller's after all.
            if state.granted.remove(waiter.id) != nil { return (true, []) }
            state.queue.removeAll { $0.id == waiter.id }
            // The head gone may let the next ones in.
            return (false, state.grantQueued(limit: limit))
        }
        for wake in woken { wake.signal() }
        if taken { _ = waiter.wake.wait(timeout: .now()) }  // the release's signal, consumed
        return taken
    }

    /// Takes `bytes`, waiting in turn at most `wait`: false when they did not come (nothing taken).
    public func acquire(_ bytes: Int, waitingAtMost wait: Duration) -> Bool {
        let parts = wait.components
        let nanoseconds = Int(clamping: parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000)
        return acquire(bytes, until: .now() + .nanoseconds(nanoseconds))
    }

    /// Takes `bytes` if they fit now and nobody waits (the reserve included); never waits.
    public func acquireNow(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard state.queue.isEmpty, state.fits(bytes, limit: limit) else { return false }
            state.take(bytes)
            return true
        }
    }

    /// Takes `bytes` for read-ahead if nobody waits and `reserve` stays free; never waits.
    public func acquireAhead(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard state.queue.isEmpty, state.inUse + bytes + reserve <= limit else { return false }
            state.take(bytes)
            return true
        }
    }

    /// Gives back bytes taken by `acquire` or `acquireAhead`, and lets waiters in.
    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        let woken = state.withLock { state in
            state.inUse -= bytes
            return state.grantQueued(limit: limit)
        }
        for wake in woken { wake.signal() }
    }

    /// Bytes taken now.
    public var inUse: Int { state.withLock { $0.inUse } }

    /// Callers waiting in line now: for tests that wait until a caller waits.
    var queued: Int { state.withLock { $0.queue.count } }

    /// The most bytes ever taken at once: what tests hold against `limit`.
    public var highWater: Int { state.withLock { $0.highWater } }
}
