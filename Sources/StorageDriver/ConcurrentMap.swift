import Dispatch
import Glibc

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
}

/// The result buffer, shared by slices that write disjoint ranges of it.
private struct Slots<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}
