import Dispatch
import Distribution
import Foundation
import S3
@testable import Storage
import StorageDriver
import StorageTesting
import Synchronization
import Testing
import TestSupport

/// A repository's listing on S3 (moto) as a remote driver gets it: its link reads and stats many
/// at once, and a second listing sending no stat; on a local disk, every listing stats again.
@Suite struct RemoteListingTests {
    /// Stores `count` small blobs in one repository through `driver` (not counted).
    static func repository(_ count: Int, on driver: any StorageDriver) throws -> [Descriptor] {
        let blobs = try Registry(driver: driver).repository("listing/blobs").blobs
        return try (0..<count).map { index in try blobs.put(mediaType: "application/octet-stream", Array("blob \(index)\n".utf8)) }
    }

    static func s3Driver() throws -> S3Driver {
        try BlobDataCacheTests.s3Driver("listing")
    }

    @Test func s3ListingKeepsManyRequestsInFlight() throws {
        let s3 = try Self.s3Driver()
        let stored = try Self.repository(24, on: s3)
        // The first 8 link reads, then the first 8 stats, each wait until all 8 are in flight: a
        // listing that sent one at a time would hold the first for the whole rendezvous timeout.
        let driver = ObservedDriver(base: s3, rendezvous: 8)
        let listing = try Registry(driver: driver).repository("listing/blobs").blobs.listing { _, _ in nil }
        #expect(listing.map(\.name) == stored.map(\.digest).sorted { $0.description < $1.description })
        for blob in listing {
            let expected = try #require(stored.first { $0.digest == blob.name })
            #expect(try blob.file.get().descriptor.size == expected.size)
        }
        let observed = driver.observed
        #expect(observed.maximumOpensInFlight >= 8)
        #expect(observed.maximumStatsInFlight >= 8)
        #expect(observed.rendezvousTimedOut == false)
    }

    @Test func secondS3ListingSendsNoStats() throws {
        let s3 = try Self.s3Driver()
        _ = try Self.repository(12, on: s3)
        let driver = ObservedDriver(base: s3)
        let registry = Registry(driver: driver)
        let first = try registry.repository("listing/blobs").blobs.listing { _, _ in nil }
        #expect(driver.observed.stats == 12)
        #expect(driver.observed.opens == 12)
        // The same listing again within ListedLinks.timeout: neither its links nor its data files
        // are read again.
        let second = try registry.repository("listing/blobs").blobs.listing { _, _ in nil }
        #expect(driver.observed.stats == 12)
        #expect(driver.observed.opens == 12, "links read again within the timeout")
        #expect(second.map(\.name) == first.map(\.name))
        #expect(try second.map { try $0.file.get() } == first.map { try $0.file.get() })
        // A blob linked through the same store: the next listing reads the links again and shows it.
        let added = try registry.repository("listing/blobs").blobs.put(mediaType: "application/octet-stream", Array("one more\n".utf8))
        let third = try registry.repository("listing/blobs").blobs.listing { _, _ in nil }
        #expect(driver.observed.opens == 25, "the links after a link was written: \(driver.observed.opens - 12) read")
        #expect(third.map(\.name).contains(added.digest) && third.count == 13)
    }

    @Test func localListingStatsEveryTime() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-listing")
        let local = try FilesystemDriver(root: directory.path)
        #expect(local.requestConcurrency == .local)
        _ = try Self.repository(12, on: local)
        let driver = ObservedDriver(base: local)
        let blobs = try Registry(driver: driver).repository("listing/blobs").blobs
        let first = try blobs.listing { _, _ in nil }
        let second = try blobs.listing { _, _ in nil }
        #expect(driver.observed.stats == 24)
        #expect(second.map(\.name) == first.map(\.name))
    }
}

/// A driver over another one that counts stats and directory opens (a link read each) and how
/// many run at once, and can hold the first `rendezvous` of each kind until that many are in
/// flight together (or 20 s have passed, which it records).
final class ObservedDriver: ForwardingDriver {
    struct Observed: Sendable {
        var stats = 0
        var opens = 0
        var statsInFlight = 0
        var opensInFlight = 0
        var maximumStatsInFlight = 0
        var maximumOpensInFlight = 0
        var rendezvousTimedOut = false
    }

    let base: any StorageDriver
    let state = Mutex(Observed())
    let statRendezvous: Rendezvous
    let openRendezvous: Rendezvous

    init(base: any StorageDriver, rendezvous: Int = 1) {
        self.base = base
        statRendezvous = Rendezvous(rendezvous)
        openRendezvous = Rendezvous(rendezvous)
    }

    var observed: Observed { state.withLock { $0 } }
    var name: String { "observed \(base.name)" }
    var requestConcurrency: RequestConcurrency { base.requestConcurrency }

    func counted<T>(stat: Bool, _ body: () throws(StorageDriverError) -> T) throws(StorageDriverError) -> T {
        state.withLock { o in
            if stat {
                o.stats += 1
                o.statsInFlight += 1
                o.maximumStatsInFlight = max(o.maximumStatsInFlight, o.statsInFlight)
            } else {
                o.opens += 1
                o.opensInFlight += 1
                o.maximumOpensInFlight = max(o.maximumOpensInFlight, o.opensInFlight)
            }
        }
        defer { state.withLock { o in if stat { o.statsInFlight -= 1 } else { o.opensInFlight -= 1 } } }
        if !(stat ? statRendezvous : openRendezvous).arrive() { state.withLock { $0.rendezvousTimedOut = true } }
        return try body()
    }

    func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        try counted(stat: true) { () throws(StorageDriverError) in try base.stat(path) }
    }
    func stat(_ relative: String, below directory: DriverPath) throws(StorageDriverError) -> FileInfo {
        try counted(stat: true) { () throws(StorageDriverError) in try base.stat(relative, below: directory) }
    }
    func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory {
        ObservedDirectory(base: try base.directory(path), driver: self)
    }
}

/// A directory whose opens (a link read each, in a listing) the driver counts.
private final class ObservedDirectory: DriverDirectory {
    let base: any DriverDirectory
    let driver: ObservedDriver

    init(base: any DriverDirectory, driver: ObservedDriver) {
        self.base = base
        self.driver = driver
    }

    var path: DriverPath { base.path }
    func entries() throws(StorageDriverError) -> [DirectoryEntry] { try base.entries() }
    func directory(_ name: String) throws(StorageDriverError) -> any DriverDirectory {
        ObservedDirectory(base: try base.directory(name), driver: driver)
    }
    func open(_ relative: String) throws(StorageDriverError) -> OpenedFile {
        try driver.counted(stat: false) { () throws(StorageDriverError) in try base.open(relative) }
    }
    func stat(_ relative: String) throws(StorageDriverError) -> FileInfo {
        try driver.counted(stat: true) { () throws(StorageDriverError) in try base.stat(relative) }
    }
}

/// The first `count` arrivals wait for one another; later ones pass at once. An arrival that has
/// waited 20 s gives up, and so does every arrival after it (a caller that sends one request at
/// a time then costs the test 20 s, not 20 s a request).
final class Rendezvous: Sendable {
    let count: Int
    /// Arrivals so far, and whether one gave up.
    let state = Mutex((arrived: 0, abandoned: false))
    let released = DispatchSemaphore(value: 0)

    init(_ count: Int) { self.count = count }

    /// False if this arrival gave up waiting for the others, or came after one that did.
    func arrive() -> Bool {
        let (number, abandoned) = state.withLock { s in
            s.arrived += 1
            return (s.arrived, s.abandoned)
        }
        if abandoned { return number > count }
        if number < count {
            guard released.wait(timeout: .now() + 20) == .success else {
                state.withLock { $0.abandoned = true }
                return false
            }
            return true
        }
        if number == count { for _ in 1..<count { released.signal() } }
        return true
    }
}
