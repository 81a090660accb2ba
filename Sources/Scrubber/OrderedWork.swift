import Dispatch
import Synchronization

/// Runs jobs `0..<count` on the calling thread and `workers - 1` more, and hands every result to
/// the caller in job order, so that what the caller reports does not depend on which thread
/// finished first.
enum OrderedWork {
    /// `makeWorker` builds each extra thread's private state (a read buffer), `caller` is the
    /// calling thread's; `job` must not touch the caller's other state. The caller runs jobs
    /// itself rather than sleep until the next result is in: a wake-up per small file would cost
    /// more than the file. `whileWaiting` runs when it has nothing left to run and a result is
    /// slow to come (another thread's large file), to redraw progress.
    static func run<Worker, Result: Sendable>(
        count: Int, workers: Int, caller: Worker,
        makeWorker: @escaping @Sendable () -> Worker,
        job: @escaping @Sendable (Worker, Int) -> Result,
        whileWaiting: () -> Void,
        consume: (Int, Result) throws -> Void
    ) rethrows {
        guard workers > 1, count > 1 else {
            for index in 0..<count { try consume(index, job(caller, index)) }
            return
        }
        let slots = ResultSlots<Result>(count: count)
        let group = DispatchGroup()
        for _ in 1..<min(workers, count) {
            DispatchQueue.global().async(group: group) {
                let worker = makeWorker()
                while let index = slots.claim() { slots.fill(index, job(worker, index), signal: true) }
            }
        }
        // Also when `consume` throws: no thread may outlive the call and its captured state.
        defer {
            slots.cancel()
            group.wait()
        }
        for index in 0..<count {
            while true {
                if let result = slots.take(index) {
                    try consume(index, result)
                    break
                }
                if let other = slots.claim() {
                    slots.fill(other, job(caller, other), signal: false)
                } else {
                    slots.wait(whileWaiting)
                }
            }
        }
    }
}

/// The results of one `OrderedWork.run`, filled in any order, taken in order.
private final class ResultSlots<Result: Sendable>: Sendable {
    private let count: Int
    private let next = Atomic(0)
    private let cancelled = Atomic(false)
    private let results: Mutex<[Result?]>
    /// Signalled once per result of another thread; only the caller waits on it, and only once
    /// every job has been claimed.
    private let filled = DispatchSemaphore(value: 0)

    init(count: Int) {
        self.count = count
        results = Mutex(Array(repeating: nil, count: count))
    }

    /// The next job to run, nil when there is none left.
    func claim() -> Int? {
        guard !cancelled.load(ordering: .relaxed) else { return nil }
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return index < count ? index : nil
    }

    func fill(_ index: Int, _ result: Result, signal: Bool) {
        results.withLock { $0[index] = result }
        if signal { filled.signal() }
    }

    func take(_ index: Int) -> Result? {
        results.withLock { results in
            defer { results[index] = nil }
            return results[index]
        }
    }

    /// Until another thread's next result, or a while.
    func wait(_ whileWaiting: () -> Void) {
        if filled.wait(timeout: .now() + .milliseconds(200)) == .timedOut { whileWaiting() }
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }
}
