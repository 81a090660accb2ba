import Synchronization
import Testing

@testable import StorageDriver

@Suite struct ConcurrentMapTests {
    @Test(arguments: [0, 1, 7, 2047, 2048, 10_001])
    func keepsOrderAndVisitsEachElementOnce(count: Int) {
        let input = Array(0..<count)
        let visits = Mutex([Int](repeating: 0, count: count))
        let output = input.concurrentMap(minimumPerThread: 1024) { value in
            visits.withLock { $0[value] += 1 }
            return value * 3 + 1
        }
        #expect(output == input.map { $0 * 3 + 1 })
        #expect(visits.withLock { $0.allSatisfy { $0 == 1 } })
    }
}
