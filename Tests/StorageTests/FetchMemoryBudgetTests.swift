import Dispatch
import Distribution
import Foundation
import Glibc
@testable import Storage
import StorageDriver
import Synchronization
import Testing
import TestSupport

/// The process-wide budget of blob data in flight: its rules on their own, then streams of a blob
/// larger than the cache over S3 (moto) with a budget far smaller than what their windows would
/// take, which must never hold more than it and still read every byte, and cache fetches, which
/// hold no block in memory at all.
@Suite struct FetchMemoryBudgetTests {
    static let block = BlobDataCacheTests.block

    @Test func waitersAreServedInTurnAndReadAheadLeavesTheReserve() {
        let budget = FetchMemoryBudget(limit: 100, reserve: 25)
        #expect(budget.acquire(50, waitingAtMost: .zero))
        #expect(budget.acquireAhead(25), "50 + 25 leaves the reserve of 25")
        #expect(!budget.acquireAhead(1), "read-ahead never takes the reserve")
        #expect(budget.acquireNow(25), "a block a read needs may")
        #expect(budget.inUse == 100 && budget.highWater == 100)
        #expect(!budget.acquireNow(1) && !budget.acquire(1, waitingAtMost: .zero), "nothing over the limit")
        #expect(budget.queued == 0)

        // Two waiters: the first in line gets the first bytes given back, even if the second would fit.
        let order = Mutex<[String]>([])
        let group = DispatchGroup()
        for (name, bytes) in [("first", 60), ("second", 10)] {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                if budget.acquire(bytes, waitingAtMost: .seconds(60)) { order.withLock { $0.append(name) } }
            }
            BlobDataCacheTests.waitUntil { budget.queued == (name == "first" ? 1 : 2) }
        }
        #expect(!budget.acquireAhead(0), "nobody overtakes a waiter")
        // 50 in use: the first (60) does not fit yet, and the second (10), which would, waits behind it.
        budget.release(50)
        #expect(budget.inUse == 50 && budget.queued == 2)
        budget.release(25)  // 25 in use: 60 fits, then 10 (given in the release itself)
        #expect(budget.inUse == 95 && budget.queued == 0)
        group.wait()
        #expect(Set(order.withLock { $0 }) == ["first", "second"])
        #expect(budget.highWater == 100)

        // A waiter that gets nothing in time gives up, and takes nothing.
        let started = ContinuousClock.now
        #expect(!budget.acquire(10, waitingAtMost: .milliseconds(200)))
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        #expect(budget.inUse == 95 && budget.queued == 0)
        budget.release(95)
        #expect(budget.inUse == 0)
    }

    /// Eight readers stream a blob larger than the cache at once, each with a window of four
    /// blocks, through a budget of four blocks: never more than four blocks exist, every reader
    /// gets every byte, and all the budget is back once they are done.
    @Test func concurrentStreamsNeverHoldMoreThanTheBudget() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-budget")
        defer { directory.remove() }
        let s3 = try BlobDataCacheTests.s3Driver("budget-streams")
        let bytes = seededBytes(count: 24 * Self.block + 17, seed: 21)
        let descriptor = try BlobDataCacheTests.store(bytes, in: s3)
        let budget = FetchMemoryBudget(limit: 4 * Self.block)
        let cache = try BlobDataCache(
            directory: directory.path, capacity: Int64(2 * Self.block), blockSize: Self.block, parallelism: 3, readAheadBlocks: 4,
            budget: budget)
        let registry = Registry(driver: s3, dataCache: cache)
        let results = Mutex<[Result<[UInt8], any Error>]>([])
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let result = Result { try BlobDataCacheTests.readAll(try registry.blobStore.open(descriptor)) }
                results.withLock { $0.append(result) }
            }
        }
        group.wait()
        let all = results.withLock { $0 }
        #expect(all.count == 8)
        for result in all {
            switch result {
            case .success(let read): #expect(read == bytes)
            case .failure(let error): Issue.record("a stream failed: \(error)")
            }
        }
        #expect(budget.highWater <= budget.limit, "high-water \(budget.highWater) over the limit \(budget.limit)")
        #expect(budget.highWater >= Self.block)
        #expect(budget.inUse == 0, "every block's bytes are back once its readers are gone")
    }

    /// Six blobs fetched into the cache at once, three blocks of each in flight, beside a budget
    /// of four blocks: all published, byte for byte, and no byte of the budget taken: a fetch
    /// writes each block into its file as the GET's body arrives and keeps no block in memory.
    @Test func concurrentFetchesHoldNoBlockInMemory() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-budget")
        defer { directory.remove() }
        let s3 = try BlobDataCacheTests.s3Driver("budget-fetches")
        let blobs = try (0..<6).map { index in
            let bytes = seededBytes(count: 9 * Self.block + index, seed: 30 + UInt64(index))
            return (bytes, try BlobDataCacheTests.store(bytes, in: s3))
        }
        let budget = FetchMemoryBudget(limit: 4 * Self.block)
        let cache = try BlobDataCache(
            directory: directory.path, capacity: 10 << 20, blockSize: Self.block, parallelism: 3, budget: budget)
        let registry = Registry(driver: s3, dataCache: cache)
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for (bytes, descriptor) in blobs {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let reader = try registry.blobStore.open(descriptor)
                    let read = try BlobDataCacheTests.readAll(reader)
                    if !reader.verifiedOnArrival || read != bytes {
                        failures.withLock { $0.append("\(descriptor.digest): wrong bytes") }
                    }
                } catch {
                    failures.withLock { $0.append("\(descriptor.digest): \(error)") }
                }
            }
        }
        group.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        for (_, descriptor) in blobs {
            #expect(try sha256Hex(ofFile: cache.path(of: descriptor.digest)) == descriptor.digest.hex)
        }
        #expect(budget.highWater == 0, "a fetch took \(budget.highWater) bytes of block buffers")
        #expect(budget.inUse == 0)
    }

    /// A reader that holds the whole budget and goes idle makes another one wait, but only until
    /// the wait's deadline: EIO then, not a hang. Once the first reader is closed, the second reads.
    @Test func aReaderWaitingForBytesAnIdleReaderHoldsFailsAtItsDeadline() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-budget")
        defer { directory.remove() }
        let s3 = try BlobDataCacheTests.s3Driver("budget-idle")
        let bytes = seededBytes(count: 6 * Self.block, seed: 40)
        let descriptor = try BlobDataCacheTests.store(bytes, in: s3)
        let budget = FetchMemoryBudget(limit: Self.block)
        let cache = try BlobDataCache(
            directory: directory.path, capacity: Int64(Self.block), blockSize: Self.block, budget: budget, budgetWait: .milliseconds(500))
        let registry = Registry(driver: s3, dataCache: cache)
        var idle: DataFileReader? = try registry.blobStore.open(descriptor)
        var small = [UInt8](repeating: 0, count: 4096)
        #expect(try small.withUnsafeMutableBytes { try idle!.read(into: $0, at: 0) } == 4096)
        #expect(small == Array(bytes[0..<4096]))
        #expect(budget.inUse == Self.block, "the idle reader holds its block")

        // From the start, as a reader of the whole blob begins: a read that needs its block (a
        // seek elsewhere would read its own bytes only, with no block and no budget).
        let waiting = try registry.blobStore.open(descriptor)
        let started = ContinuousClock.now
        let error = #expect(throws: BlobError.self) { try small.withUnsafeMutableBytes { try waiting.read(into: $0, at: 0) } }
        #expect(ContinuousClock.now - started < .seconds(10), "failed at the wait's deadline")
        if case .io(_, _, let code)? = error { #expect(code == EIO) } else { Issue.record("expected EIO, got \(String(describing: error))") }

        idle = nil
        #expect(idle == nil && budget.inUse == 0)
        #expect(try small.withUnsafeMutableBytes { try waiting.read(into: $0, at: 0) } == 4096)
        #expect(small == Array(bytes[0..<4096]))
        #expect(budget.highWater <= budget.limit)
    }
}
