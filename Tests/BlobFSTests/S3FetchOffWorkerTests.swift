import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// The first open of an S3 blob fetches it whole into the blob cache: that fetch runs on a
/// thread of its own, not on the libfuse worker that took the OPEN, so a mount with a single
/// worker keeps answering lookups and listings while a fetch is stalled behind a slow store.
@Suite(.serialized) struct S3FetchOffWorkerTests {
    @Test func aStalledFetchHoldsNoWorkerAndItsBytesHashRightOnceTheStoreAnswers() throws {
        // A server of its own: the held window must stay well inside the client's 30 s request
        // deadline, which other suites' traffic on the shared server could stretch.
        let server = try MotoServer()
        defer { server.stop() }
        let place = try S3MountTests.Place("offworker", server: server)
        defer { place.workspace.remove() }
        let pushed = try S3MountTests.push(place)
        let large = pushed.large
        // Only the large blob's data is held; its link, every other key and listings pass.
        let proxy = try GatedProxy(targetPort: place.server.port, pattern: "\(large.canonical.hex)/data")
        defer { proxy.stop() }
        let options = [
            "--s3-endpoint", proxy.endpoint, "--s3-credentials-file", place.credentialsFile, "--cache-dir", place.cacheDirectory,
            "--threads", "1",
        ]
        try BlobfsMount.withMount(root: place.store, mountpoint: place.workspace.mountpoint, options: options) { mount in
            try proxy.hold()
            var released = false
            defer { if !released { try? proxy.release() } }  // a failed expectation must not leave the reader stuck
            let hashed = Mutex<Result<String, any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            let path = mount.path(large.relativePath)
            Thread.detachNewThread {
                let result = Result { try sha256Hex(ofFile: path) }  // not under the lock: the test looks meanwhile
                hashed.withLock { $0 = result }
                done.signal()
            }
            try proxy.waitUntilHeld(1)
            // The open waits for its data; the mount's only worker must be free for these.
            let others = pushed.blobs.filter { $0.canonical != large.canonical && $0.repository != "team/mounted" }.prefix(3)
            let stat = try Command.run("stat", ["-c", "%s %n"] + others.map { mount.path($0.relativePath) }, timeout: 20)
            #expect(stat.status == 0, "stat of other blobs while a fetch is held: \(stat)\n\(mount.log.tail(2000))")
            for blob in others {
                #expect(stat.stdoutText.contains("\(blob.bytes.count) \(mount.path(blob.relativePath))\n"), "\(blob): \(stat.stdoutText)")
            }
            let listing = try Command.run("ls", [mount.path("repo/team/app/blobs"), mount.path("repo/library/alpine/blobs")], timeout: 20)
            let listed = try #require(pushed.blobs.first { $0.repository == "team/app" })
            #expect(listing.status == 0 && listing.stdoutText.contains("\(listed.digest)"), "\(listing)")
            #expect(hashed.withLock { $0 } == nil, "the held open has not returned yet")
            try proxy.release()
            released = true
            #expect(done.wait(timeout: .now() + 120) == .success, "the open returned once the store answered\n\(mount.log.tail(2000))")
            switch hashed.withLock({ $0 }) {
            case .success(let hex)?: #expect(hex == large.canonical.hex)
            case .failure(let error)?: Issue.record("reading the held blob: \(error)\n\(mount.log.tail(2000))")
            case nil: Issue.record("the held blob was never read")
            }
            let cached = "\(place.cacheDirectory)/sha256/\(large.canonical.hex.prefix(2))/\(large.canonical.hex)"
            #expect(try sha256Hex(ofFile: cached) == large.canonical.hex, "the fetch was published")
        }
    }
}
