import BlobCache
import Dispatch
import Distribution
import Glibc
import Storage
import StorageDriver
import Synchronization
import Testing
import TestSupport
import StorageTesting

/// The upload state machine that a mount's files are written through: positional writes, the
/// phases, the first error, and what a concurrent caller sees during a commit.
@Suite struct UploadWriterPhaseTests {
    @Test(arguments: StoreFixture.kinds) func positionalWritesAppendAndFillGapsWithZeros(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let writer = try repository.blobs.createUpload()
        #expect(writer.phase == .writing)
        let first = seededBytes(count: 1000, seed: 40)
        let second = seededBytes(count: 500, seed: 41)
        try writer.write(first, at: 0)
        #expect(writer.size == 1000)
        // 100_000 bytes beyond the end: zeros fill the hole, in more than one block.
        try writer.write(second, at: 101_000)
        #expect(writer.size == 101_500)
        try writer.extend(to: 101_500)  // the size it has: no change
        try writer.extend(to: 102_000)
        #expect(writer.size == 102_000)
        let expected = first + [UInt8](repeating: 0, count: 100_000) + second + [UInt8](repeating: 0, count: 500)
        #expect(writer.contentMatches(Digester.digest(of: expected)) == true)

        let committed = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: expected), size: 0))
        #expect(committed == Descriptor(digest: Digester.digest(of: expected), size: Int64(expected.count)))
        #expect(writer.phase == .committed(committed))
        expectSameBytes(try repository.blobs.get(committed.digest), expected)
    }

    @Test(arguments: StoreFixture.kinds) func aWriteBehindTheEndIsRefusedAndTheUploadGoesOn(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let writer = try repository.blobs.createUpload()
        try writer.write([1, 2, 3, 4])
        #expect(throws: BlobError.invalidLength(expected: 4, actual: 2)) { try writer.write([9], at: 2) }
        #expect(throws: BlobError.invalidLength(expected: 4, actual: 3)) { try writer.extend(to: 3) }
        #expect(writer.phase == .writing)
        #expect(writer.size == 4)
        try writer.write([5], at: 4)
        let committed = try writer.commit(provisional: Descriptor(digest: Digester.digest(of: [1, 2, 3, 4, 5]), size: 5))
        expectSameBytes(try repository.blobs.get(committed.digest), [1, 2, 3, 4, 5])
    }

    @Test(arguments: StoreFixture.kinds) func aFailedWriteRemovesTheUploadAndEveryLaterCallReportsItsError(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let registry = Registry(driver: ScriptedDriver(base: store.driver, spaceForEachFile: 1000), cache: InMemoryCacheProvider())
        let repository = try registry.repository("foo/bar")
        let writer = try repository.blobs.createUpload()
        try writer.write(seededBytes(count: 600, seed: 42))
        #expect(try store.allFiles().contains { $0.hasSuffix("/_uploads/\(writer.id)/data") })

        let full = BlobError.io(operation: "write", path: "/docker/registry/v2/repositories/foo/bar/_uploads/\(writer.id)/data", errno: ENOSPC)
        #expect(throws: full) { try writer.write(seededBytes(count: 600, seed: 43)) }
        #expect(writer.phase == .failed(full))
        #expect(try store.allFiles().isEmpty, "the failed upload is removed at once, freeing its space")

        // Every later call says what ended the upload: a full disk stays ENOSPC.
        #expect(throws: full) { try writer.write([1]) }
        #expect(throws: full) { try writer.write([1], at: 600) }
        #expect(throws: full) { try writer.extend(to: 700) }
        #expect(throws: full) { try writer.commit(provisional: Descriptor(digest: Digester.digest(of: [1]), size: 0)) }
        #expect(writer.abandon() == nil, "nothing left to cancel")
        try writer.cancel()
        #expect(writer.phase == .failed(full))
        #expect(try store.allFiles().isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func aFailedGapFillEndsTheUploadToo(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let registry = Registry(driver: ScriptedDriver(base: store.driver, spaceForEachFile: 100_000))
        let writer = try registry.repository("foo/bar").blobs.createUpload()
        #expect(throws: BlobError.self) { try writer.write([1], at: 200_000) }
        guard case .failed(let error) = writer.phase else {
            Issue.record("a write whose hole did not fit left the upload \(writer.phase)")
            return
        }
        #expect(throws: error) { try writer.write([1]) }
        #expect(try store.allFiles().isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func afterACommitWritesAreClosedAndTheSameCommitAnswersAgain(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let bytes = seededBytes(count: 3000, seed: 44)
        let sha512 = Digester.digest(of: bytes, algorithm: .sha512)
        let writer = try repository.blobs.createUpload(alsoDigest: .sha512)
        try writer.write(bytes)
        #expect(writer.contentMatches(sha512) == true)
        let committed = try writer.commit(provisional: Descriptor(digest: sha512, size: 0))
        #expect(committed.digest == Digester.digest(of: bytes))
        #expect(writer.phase == .committed(committed))

        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.write([1]) }
        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.write([1], at: 3000) }
        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.extend(to: 4000) }
        #expect(throws: BlobError.invalidLength(expected: 3000, actual: 10)) { try writer.extend(to: 10) }
        try writer.extend(to: 3000)  // its own size: no change, even now
        // A second close of the same file commits again: the same descriptor, under either digest.
        #expect(try writer.commit(provisional: Descriptor(digest: sha512, size: 0)) == committed)
        #expect(try writer.commit(provisional: Descriptor(digest: committed.digest, size: 0)) == committed)
        let other = Digester.digest(of: [1])
        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.commit(provisional: Descriptor(digest: other, size: 0)) }
        try writer.cancel()  // a no-op after commit
        #expect(writer.abandon() == nil)
        #expect(writer.phase == .committed(committed))
        expectSameBytes(try repository.blobs.get(sha512), bytes)
    }

    @Test(arguments: StoreFixture.kinds) func aFailedCommitRemovesTheUploadAndIsReportedAgain(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let writer = try store.registry.repository("foo/bar").blobs.createUpload()
        try writer.write([1, 2, 3])
        let wrong = Digester.digest(of: [3, 2, 1])
        let mismatch = BlobError.invalidDigest(wrong, reason: "content does not match digest")
        #expect(throws: mismatch) { try writer.commit(provisional: Descriptor(digest: wrong, size: 0)) }
        #expect(writer.phase == .failed(mismatch))
        #expect(throws: mismatch) { try writer.write([4]) }
        #expect(throws: mismatch) { try writer.commit(provisional: Descriptor(digest: Digester.digest(of: [1, 2, 3]), size: 0)) }
        #expect(try store.allFiles().isEmpty)
    }

    @Test(arguments: StoreFixture.kinds) func cancelIsIdempotentAndTheUploadIsUnknownAfterwards(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let repository = try store.registry.repository("foo/bar")
        let writer = try repository.blobs.createUpload()
        try writer.write(seededBytes(count: 123, seed: 45))
        #expect(writer.abandon() == 123, "the bytes thrown away")
        #expect(writer.abandon() == nil)
        try writer.cancel()
        #expect(writer.phase == .cancelled)
        #expect(throws: BlobError.uploadUnknown(writer.id)) { try writer.write([1]) }
        #expect(throws: BlobError.uploadUnknown(writer.id)) { try writer.commit(provisional: Descriptor(digest: Digest.emptySHA256, size: 0)) }
        #expect(throws: BlobError.uploadUnknown(writer.id)) { try repository.blobs.resume(id: writer.id) }
        #expect(try store.allFiles().isEmpty)

        // A released upload (closed for a later resume) can still be cancelled.
        let released = try repository.blobs.createUpload()
        try released.write([1])
        try released.close()
        #expect(released.phase == .released)
        #expect(throws: BlobError.uploadClosed(released.id)) { try released.write([2]) }
        try released.cancel()
        try released.cancel()
        #expect(released.phase == .cancelled)
        #expect(try store.allFiles().isEmpty)
    }

    /// While a commit's fsync runs, the state lock is free: size and phase answer at once, a
    /// write is refused, and a second commit and a cancel wait for the first commit's outcome.
    @Test(arguments: StoreFixture.kinds) func aConcurrentWriteDuringACommitIsClosedAndASecondCommitGetsTheSameBlob(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let gate = FsyncGate()
        let registry = Registry(driver: ScriptedDriver(base: store.driver, fsyncGate: gate), cache: InMemoryCacheProvider())
        let repository = try registry.repository("foo/bar")
        let bytes = seededBytes(count: 10_000, seed: 46)
        let digest = Digester.digest(of: bytes)
        let writer = try repository.blobs.createUpload()
        try writer.write(bytes)

        let commits = DispatchGroup()
        let first = Outcome()
        let second = Outcome()
        let cancelled = Outcome()
        DispatchQueue.global().async(group: commits) {
            first.set(Result { try writer.commit(provisional: Descriptor(digest: digest, size: 0)) })
        }
        #expect(gate.entered.wait(timeout: .now() + 30) == .success, "the commit reached its fsync")

        // The first commit is inside its fsync now, holding no state lock: phase and size answer
        // (asked from another thread, so that a lock held across the fsync fails the test
        // instead of hanging it).
        let asked = DispatchGroup()
        let seen = Mutex<(phase: UploadWriter.Phase, size: Int64)?>(nil)
        DispatchQueue.global().async(group: asked) {
            let answer = (writer.phase, writer.size)
            seen.withLock { $0 = answer }
        }
        #expect(asked.wait(timeout: .now() + 30) == .success, "phase and size answer while the commit is in its fsync")
        #expect(seen.withLock { $0?.phase } == .committing)
        #expect(seen.withLock { $0?.size } == 10_000)
        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.write([1]) }
        #expect(throws: BlobError.uploadClosed(writer.id)) { try writer.write([1], at: 10_000) }
        DispatchQueue.global().async(group: commits) {
            second.set(Result { try writer.commit(provisional: Descriptor(digest: digest, size: 0)) })
        }
        DispatchQueue.global().async(group: commits) {
            cancelled.set(Result { try writer.cancel(); return Descriptor(digest: digest, size: -1) })
        }
        gate.release.signal()
        #expect(commits.wait(timeout: .now() + 30) == .success, "the commits and the cancel finished")

        let committed = try #require(try first.get()?.get())
        #expect(committed == Descriptor(digest: digest, size: 10_000))
        #expect(try second.get()?.get() == committed, "a second commit answers with the first one's blob")
        #expect(try cancelled.get()?.get() != nil, "the cancel waited and did nothing")
        #expect(writer.phase == .committed(committed))
        expectSameBytes(try repository.blobs.get(digest), bytes)
        #expect(try store.allFiles().allSatisfy { !$0.contains("/_uploads/") })
    }
}

extension UploadWriter {
    /// A positional write of an array (typed, so that a literal is bytes).
    func write(_ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }
}

/// One result handed from a worker thread to the test.
private final class Outcome: Sendable {
    private let value = Mutex<Result<Descriptor, any Error>?>(nil)
    func set(_ result: Result<Descriptor, any Error>) { value.withLock { $0 = result } }
    func get() -> Result<Descriptor, any Error>? { value.withLock { $0 } }
}
