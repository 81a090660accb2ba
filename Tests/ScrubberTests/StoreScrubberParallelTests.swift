import Distribution
import Glibc
import Scrubber
import Storage
import StorageDriver
import TestSupport
import Testing
import StorageTesting

/// `blobfs verify` with several reading threads: the same problems, in the same order, with the
/// same counts as with one, however the threads interleave.
@Suite struct StoreScrubberParallelTests {
    /// Two repositories of many small blobs, one shared, one alias, and damage of every kind spread
    /// through them. Returns the store and the digests whose data was corrupted.
    func damagedStore(_ kind: String) throws -> (store: StoreFixture, corrupted: [Digest]) {
        let store = try StoreFixture.make(kind)
        let a = try store.registry.repository("many/a")
        let b = try store.registry.repository("many/b")
        let inA = try (0..<150).map { try upload(seededBytes(count: 1 + $0 * 29, seed: 1000 + UInt64($0)), to: a) }
        let inB = try (0..<150).map { try upload(seededBytes(count: 7 + $0 * 31, seed: 2000 + UInt64($0)), to: b) }
        _ = try b.blobs.mount(inA[3].digest, from: a.blobs)
        let aliasedBytes = seededBytes(count: 4000, seed: 3000)
        try upload(aliasedBytes, to: b, as: Digester.digest(of: aliasedBytes, algorithm: .sha512))

        // Every tenth blob of many/a (the shared one among them) has a flipped byte.
        var corrupted: [Digest] = []
        for descriptor in stride(from: 0, to: inA.count, by: 10).map({ inA[$0] }) + [inA[3]] {
            let path = PathMapper.path(.blobData(descriptor.digest))
            var bytes = try store.driver.getContent(path, limit: Int.max)
            bytes[bytes.count / 2] ^= 0x40
            try store.driver.putContent(path, bytes)
            corrupted.append(descriptor.digest)
        }
        try store.driver.delete(PathMapper.path(.blobData(inA[5].digest)))
        if kind == "inmemory" {
            // The in-memory driver has no empty directories: keep the blob directory as a disk would.
            try store.driver.putContent(try PathMapper.path(.blob(inA[5].digest)).appending("leftover"), [])
        }
        try store.driver.delete(PathMapper.path(.blob(inB[7].digest)))
        try store.driver.putContent(link("many/b", inB[11].digest), Array("garbage".utf8))
        try store.driver.putContent(link("many/b", inB[13].digest), [])
        return (store, corrupted)
    }

    func link(_ repository: String, _ digest: Digest) -> DriverPath {
        PathMapper.path(.layerLink(try! RepositoryName(repository), digest))
    }

    func verify(_ store: StoreFixture, _ repository: String?, workers: Int) throws -> (ScrubReport, [StoreProblem]) {
        var streamed: [StoreProblem] = []
        let report = try StoreScrubber(registry: store.registry).scrub(
            repository: repository.map { try RepositoryName($0) }, workers: workers, onProblem: { streamed.append($0) })
        return (report, streamed)
    }

    @Test(arguments: StoreFixture.kinds) func everyProblemInOrderWhateverTheWorkers(kind: String) throws {
        let (store, corrupted) = try damagedStore(kind)
        defer { store.close() }
        for repository in [nil, "many/a", "many/b"] {
            let (reference, _) = try verify(store, repository, workers: 1)
            for workers in [2, 3, 8] {
                for _ in 1...3 {
                    let (report, streamed) = try verify(store, repository, workers: workers)
                    let scope = "\(repository ?? "whole store"), \(workers) workers"
                    #expect(report.problems == reference.problems, "\(scope)")
                    #expect(streamed == report.problems, "\(scope): streamed as found, in the same order")
                    #expect(report.blobsChecked == reference.blobsChecked, "\(scope)")
                    #expect(report.bytesHashed == reference.bytesHashed, "\(scope)")
                    #expect(report.linksChecked == reference.linksChecked, "\(scope)")
                    #expect(report.repositoriesChecked == reference.repositoriesChecked, "\(scope)")
                }
            }
        }

        // The whole store: every corrupt blob once, in path order, then each repository's links.
        let (report, _) = try verify(store, nil, workers: 4)
        let corrupt = report.problems.filter { $0.kind == .corruptData }
        #expect(corrupt.map(\.path) == corrupted.map { PathMapper.path(.blobData($0)) }.sorted())
        #expect(report.problems.prefix(corrupt.count).allSatisfy { $0.kind == .corruptData }, "the blob phase comes first")
        let linkProblems = report.problems.dropFirst(corrupt.count)
        #expect(linkProblems.map(\.repository?.value) == ["many/a", "many/b", "many/b", "many/b"])
        #expect(Set(linkProblems.map(\.kind)) == [.missingData, .linkToDeletedBlob, .garbageLink, .emptyLink])
        #expect(Array(linkProblems.map(\.path)) == linkProblems.map(\.path).sorted(), "links in path order")
        #expect(report.blobsChecked == 149 + 149 + 1, "every blob that has data, once (and the alias's)")
        #expect(report.linksChecked == 150 + 151 + 2, "many/b: its own, the shared one, the alias under both digests")

        // One repository: its corrupt blobs are found through its links, in link order.
        let (a, _) = try verify(store, "many/a", workers: 4)
        #expect(a.problems.filter { $0.kind == .corruptData }.compactMap(\.digest) == corrupted.sorted { $0.hex < $1.hex })
        #expect(a.problems.filter { $0.kind != .corruptData }.map(\.kind) == [.missingData])
    }

    @Test func aLargeBlobAmongSmallOnesIsHashedOnceAndInOrder() throws {
        let store = try StoreFixture.make("filesystem")
        defer { store.close() }
        let repository = try store.registry.repository("mixed/app")
        var blobs = try (0..<40).map { try upload(seededBytes(count: 100 + $0, seed: 4000 + UInt64($0)), to: repository) }
        blobs.append(try upload(seededBytes(count: 3 << 20, seed: 4100), to: repository))
        let (reference, _) = try verify(store, nil, workers: 1)
        let (report, _) = try verify(store, nil, workers: 2)
        #expect(report.isIntact && reference.isIntact)
        #expect(report.bytesHashed == blobs.reduce(0) { $0 + $1.size }, "each blob once, none again for its link")
        #expect(report.bytesHashed == reference.bytesHashed && report.blobsChecked == 41 && report.linksChecked == 41)
    }

    /// Verification reads must not update access times (O_NOATIME): a store under relatime
    /// would otherwise be written to (through the journal) for every blob it re-hashes.
    @Test func verificationLeavesAccessTimesAlone() throws {
        let store = try StoreFixture.make("filesystem")
        defer { store.close() }
        let repository = try store.registry.repository("atime/app")
        let blobs = try (0..<5).map { try upload(seededBytes(count: 1000 + $0, seed: 5000 + UInt64($0)), to: repository) }
        let root = try #require(store.directory).path
        let old = timespec(tv_sec: 1_000_000_000, tv_nsec: 0)  // older than the mtime: relatime would update it
        let files = blobs.map { root + PathMapper.path(.blobData($0.digest)).value }
            + blobs.map { root + link("atime/app", $0.digest).value }
        for file in files {
            var times = [old, timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)]  // UTIME_OMIT: keep the mtime
            #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        }
        #expect(try StoreScrubber(registry: store.registry).scrub(workers: 2).isIntact)
        #expect(try StoreScrubber(registry: store.registry).scrub(repository: try RepositoryName("atime/app"), workers: 1).isIntact)
        for file in files {
            var st = Glibc.stat()
            #expect(lstat(file, &st) == 0)
            #expect(st.st_atim.tv_sec == old.tv_sec, "\(file): its access time was updated")
        }
    }
}
