import Dispatch
import Synchronization
import Testing

@testable import StorageDriver

/// `concurrentMap` as a remote driver's requests are spread.
@Suite struct RequestConcurrencyTests {
    @Test(arguments: [0, 1, 2, 33, 1000])
    func remoteMapKeepsOrderAndVisitsEachElementOnce(count: Int) {
        let input = Array(0..<count)
        let visits = Mutex([Int](repeating: 0, count: count))
        let output = input.concurrentMap(.remote(threads: 16)) { value in
            visits.withLock { $0[value] += 1 }
            return value * 3 + 1
        }
        #expect(output == input.map { $0 * 3 + 1 })
        #expect(visits.withLock { $0.allSatisfy { $0 == 1 } })
    }

    /// 16 elements that each wait until all 16 have started: more than the CPUs here, which a
    /// pool sized to the CPUs would run two at a time (each then giving up after 20 s).
    @Test func remoteMapRunsAsManyAtOnceAsItSays() {
        let arrived = Mutex(0)
        let released = DispatchSemaphore(value: 0)
        let met = Array(0..<16).concurrentMap(.remote(threads: 16)) { _ -> Bool in
            let number = arrived.withLock { n in
                n += 1
                return n
            }
            if number == 16 {
                for _ in 1..<16 { released.signal() }
                return true
            }
            return released.wait(timeout: .now() + 20) == .success
        }
        #expect(met.allSatisfy { $0 })
    }

    @Test func localIsOneThreadPerCPU() {
        #expect(RequestConcurrency.local.isRemote == false)
        #expect(RequestConcurrency.local.minimumPerThread == 1024)
        #expect(InMemoryDriver().requestConcurrency == .local)
    }
}
