import Dispatch
import Glibc
import Synchronization

/// How a driver's requests are best spread when a caller has many independent ones at once (a
/// listing's link reads and data-file stats), and what one costs.
public struct RequestConcurrency: Sendable, Hashable {
    /// Requests in flight at once.
    public var threads: Int
    /// The fewest requests worth a thread of their own.
    public var minimumPerThread: Int
    /// Whether each request is a network round trip: then a thread spends its time waiting, not
    /// computing, and remembering an answer costs far less than asking again.
    public var isRemote: Bool

    public init(threads: Int, minimumPerThread: Int, isRemote: Bool) {
        self.threads = Swift.max(1, threads)
        self.minimumPerThread = Swift.max(1, minimumPerThread)
        self.isRemote = isRemote
    }

    /// System calls of microseconds on a local disk: CPU-bound, so one thread per online CPU,
    /// and only past 1,024 calls a thread, where threads cost less than they save.
    public static var local: RequestConcurrency {
        RequestConcurrency(threads: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), minimumPerThread: 1024, isRemote: false)
    }

    /// Network round trips of milliseconds: `threads` of them waiting at once whatever the CPUs,
    /// a thread worth it from the second request on.
    public static func remote(threads: Int) -> RequestConcurrency {
        RequestConcurrency(threads: threads, minimumPerThread: 1, isRemote: true)
    }
}

extension Array where Element: Sendable {
    /// `map` spread over the online CPUs in contiguous slices, results in order; sequential when
    /// there are fewer than `minimumPerThread` elements per CPU, where threads cost more than
    /// they save. For many small independent system calls (a listing's thousands of opens).
    package func concurrentMap<T: Sendable>(minimumPerThread: Int = 1024, _ transform: @Sendable (Element) -> T) -> [T] {
        let threads = Swift.min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), count / Swift.max(1, minimumPerThread))
        guard threads > 1 else { return map(transform) }
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            let slots = Slots(base: buffer.baseAddress!)
            let count = self.count
            withoutActuallyEscaping(transform) { transform in
                DispatchQueue.concurrentPerform(iterations: threads) { slice in
                    // Each slice writes its own range of the buffer: no two threads touch one slot.
                    for index in (count * slice / threads)..<(count * (slice + 1) / threads) {
                        (slots.base + index).initialize(to: transform(self[index]))
                    }
                }
            }
            initialized = count
        }
    }

    /// `map` spread as a driver's requests are best spread (`StorageDriver.requestConcurrency`),
    /// results in order. Local: `concurrentMap(minimumPerThread:)` as ever. Remote: threads of
    /// their own (libdispatch sizes its pool to the CPUs and adds a thread for a blocked one only
    /// after a delay, so a queue would keep two requests in flight here), each taking the next
    /// element as it finishes one, so that one slow request holds up no slice behind it.
    package func concurrentMap<T: Sendable>(_ concurrency: RequestConcurrency, _ transform: @Sendable (Element) -> T) -> [T] {
        guard concurrency.isRemote else { return concurrentMap(minimumPerThread: concurrency.minimumPerThread, transform) }
        let threads = Swift.min(concurrency.threads, count / concurrency.minimumPerThread)
        guard threads > 1 else { return map(transform) }
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            let slots = Slots(base: buffer.baseAddress!)
            let next = Atomic<Int>(0)
            let count = self.count
            withoutActuallyEscaping(transform) { transform in
                // Each index is taken by one thread only (the counter), so no two threads touch one slot.
                JoinedThreads.run(threads) {
                    while case let index = next.add(1, ordering: .relaxed).oldValue, index < count {
                        (slots.base + index).initialize(to: transform(self[index]))
                    }
                }
            }
            initialized = count
        }
    }
}

/// The result buffer, shared by slices that write disjoint ranges of it.
private struct Slots<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}

/// Plain POSIX threads, joined before `run` returns: StorageDriver links no Foundation.
private enum JoinedThreads {
    /// The body a thread runs, handed over as its start argument.
    private final class Start: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Runs `body` on `count` threads at once (the caller's is one of them) and returns when all
    /// have finished. A thread that cannot be created leaves its share to the others.
    static func run(_ count: Int, _ body: @Sendable () -> Void) {
        withoutActuallyEscaping(body) { body in
            var started: [pthread_t] = []
            for _ in 1..<count {
                var thread = pthread_t()
                let start = Unmanaged.passRetained(Start(body)).toOpaque()
                let created = pthread_create(&thread, nil, { argument in
                    Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue().body()
                    return nil
                }, start)
                if created == 0 {
                    started.append(thread)
                } else {
                    Unmanaged<Start>.fromOpaque(start).release()
                }
            }
            body()
            for thread in started { pthread_join(thread, nil) }
        }
    }
}
