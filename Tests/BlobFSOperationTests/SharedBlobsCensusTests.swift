@testable import BlobFS
import Dispatch
import Distribution
import Logging
import Storage
import StorageDriver
import StorageTesting
import Synchronization
import Testing

/// The count of blobs' names (shared blobs as hard links) against a census slower than a reply
/// may wait for, as a large registry's on S3 is: replies report one name meanwhile, within the
/// wait, and the true count once the census ends.
@Suite struct SharedBlobsCensusTests {
    /// A blob linked in two repositories over `driver`: its digest.
    static func sharedBlob(_ registry: Registry) throws -> Digest {
        let bytes = Array("a base layer two images share".utf8)
        let digest = try registry.repository("team/a").blobs.put(mediaType: "application/octet-stream", bytes).digest
        _ = try registry.repository("team/b").blobs.put(mediaType: "application/octet-stream", bytes)
        return digest
    }

    @Test func aCensusSlowerThanTheWaitShowsOneNameUntilItEndsThenTheCount() throws {
        let driver = HeldLayersDriver(base: InMemoryDriver())
        let registry = Registry(driver: driver)
        let digest = try Self.sharedBlob(registry)
        driver.hold()
        defer { driver.release() }
        // A reply that waited for the whole census (the old rule) would wait for ever here: the
        // census is let go after 20 s whatever happens, so such a build fails below, not hangs.
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { driver.release() }
        let shared = SharedBlobs(registry: registry, logger: Logger(label: "test"), censusWait: .milliseconds(200))
        shared.startCensus()
        #expect(driver.aListingWaits.wait(timeout: .now() + 30) == .success, "the census reached the links")
        let started = ContinuousClock.now
        #expect(shared.names(of: digest) == 1, "the census is held: one name meanwhile")
        #expect(ContinuousClock.now - started < .seconds(10), "answered after the wait, not after the census")
        driver.release()
        // Each call waits for the census up to 200 ms: it ends within a few calls of its release.
        var names = 1
        for _ in 0..<100 where names == 1 { names = shared.names(of: digest) }
        #expect(names == 2)
    }

    @Test func aCensusWithinTheWaitIsWaitedFor() throws {
        let registry = Registry(driver: InMemoryDriver())
        let digest = try Self.sharedBlob(registry)
        let shared = SharedBlobs(registry: registry, logger: Logger(label: "test"), censusWait: .seconds(30))
        #expect(shared.names(of: digest) == 2, "the first reply waited for the count")
    }
}

/// A driver over another whose listings of a repository's `_layers` wait while the test holds
/// them (a census as slow as the test needs); everything else passes through.
private final class HeldLayersDriver: ForwardingDriver {
    let base: any StorageDriver
    /// Entered while held: a held listing waits on it, with no lock held.
    private let gate = DispatchGroup()
    private struct State {
        var held = false
    }
    private let state = Mutex(State())
    /// Signalled by each listing that starts to wait.
    let aListingWaits = DispatchSemaphore(value: 0)

    init(base: any StorageDriver) { self.base = base }

    func hold() {
        state.withLock { if !$0.held { $0.held = true; gate.enter() } }
    }

    func release() {
        state.withLock { if $0.held { $0.held = false; gate.leave() } }
    }

    private func waitIfHeld(_ path: DriverPath) {
        guard path.value.contains("/_layers") else { return }
        let held = state.withLock { $0.held }
        if held {
            aListingWaits.signal()
            gate.wait()
        }
    }

    var name: String { "held \(base.name)" }
    func list(_ path: DriverPath) throws(StorageDriverError) -> [String] {
        waitIfHeld(path)
        return try base.list(path)
    }
    func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        waitIfHeld(path)
        try base.enumerateNames(in: path, body)
    }
    func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        waitIfHeld(path)
        try base.walk(path, visit)
    }
}
