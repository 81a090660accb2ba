import Dispatch
import Foundation
import Glibc
@testable import S3
import StorageDriver
import Synchronization
import Testing
import TestSupport

/// What only the S3 driver does: paging, blocks, multipart, server-side copies, and failing
/// within its deadline when the server is gone or stalls. The shared behaviours are in
/// DriverConformanceTests, which runs on this driver too. What a real server can tell runs on
/// moto and on radosgw, which checks signatures (every list below carries `/` in its prefix or
/// continuation token, sent and signed as `%2F`) and has real multipart ETags.
@Suite struct S3DriverTests {
    /// Every object key below the driver's root, straight from the bucket.
    func keys(_ driver: S3Driver) throws -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            let page = try driver.client.list(prefix: driver.prefix, delimiter: nil, continuationToken: token)
            keys += page.objects.map(\.key)
            token = page.nextToken
        } while token != nil
        return keys
    }

    @Test(arguments: S3ServerKind.allCases) func listsWalksAndDeletesMoreThanOnePageOfKeys(server: S3ServerKind) async throws {
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("paging"))
        let names = (0..<1_100).map { String(format: "k%04d", $0) }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { slice in
            for name in names[(names.count * slice / 8)..<(names.count * (slice + 1) / 8)] {
                do {
                    try driver.putContent(path("/many/\(name)"), Array(name.utf8))
                } catch {
                    failures.withLock { $0.append("\(name): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        try driver.putContent(path("/many/sub/deep"), [1])
        try driver.putContent(path("/many-sibling"), [2])

        #expect(try driver.list(path("/many")) == names + ["sub"])  // two pages of ListObjectsV2
        var walked: [String] = []
        try driver.walk(path("/many")) { entry in
            walked.append(entry.path.name)
            return .continue
        }
        #expect(walked == names + ["sub", "deep"])
        #expect(try driver.directory(path("/many")).entries().count == 1_101)
        #expect(try driver.getContent(path("/many/k1099")) == Array("k1099".utf8))

        try driver.delete(path("/many"))  // DeleteObjects in two batches
        #expect(throws: StorageDriverError.pathNotFound("/many")) { try driver.list(path("/many")) }
        #expect(try keys(driver) == [driver.prefix + "many-sibling"])
    }

    /// moto closes every connection (`Connection: close`), so keep-alive is checked on a server
    /// that keeps them: the faulty server's `/ready` paths answer at once over HTTP/1.1.
    @Test func requestsReuseTheirConnections() throws {
        let server = try FaultyHTTPServer()
        defer { server.stop() }
        let driver = S3Driver(client: S3Fixture.client(endpoint: server.endpoint, bucket: "ready"))
        for _ in 0..<20 {
            #expect(try driver.stat(path("/f")).size == 0)
            #expect(try driver.getContent(path("/f")) == [])
        }
        // One thread, one pooled handle: one connection carries all 40 requests.
        #expect(driver.client.connectionsOpened == 1)
    }

    @Test func slowDownIsRetriedWithinTheAttemptsAndAnErrorBeyondThem() throws {
        let server = try FaultyHTTPServer()
        defer { server.stop() }
        // Two 503 SlowDown, then 200: a third try gets the content.
        let patient = S3Driver(client: S3Fixture.client(endpoint: server.endpoint, bucket: "slowdown", maxAttempts: 3))
        #expect(try patient.getContent(path("/a")) == Array("ok".utf8))
        // Two tries are not enough: the last answer is the error, with its code and the endpoint.
        let hasty = S3Driver(client: S3Fixture.client(endpoint: server.endpoint, bucket: "slowdown", maxAttempts: 2))
        let error = #expect(throws: StorageDriverError.self) { try hasty.getContent(path("/b")) }
        guard case .io(let operation, _, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == EIO)
        #expect(operation.contains("HTTP 503 SlowDown") && operation.contains(server.endpoint), "\(operation)")
        #expect(try hasty.getContent(path("/b")) == Array("ok".utf8))  // its third request overall
    }

    @Test(arguments: S3ServerKind.allCases) func rangedReadsAcrossBlockEdges(server: S3ServerKind) async throws {
        let block = 64 << 10
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("ranges"), tuning: S3DriverTuning(readBlockSize: block))
        let content = seededBytes(count: 3 * block + 123, seed: 14)
        try driver.putContent(path("/blob/data"), content)
        let reader = try driver.reader(path("/blob/data"))
        #expect(try reader.currentSize() == Int64(content.count))

        func read(_ count: Int, at offset: Int) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: Int64(offset)) }
            return Array(buffer[..<n])
        }
        func expected(_ count: Int, at offset: Int) -> [UInt8] {
            Array(content[min(offset, content.count)..<min(offset + count, content.count)])
        }
        // Inside one block, ending on an edge, starting on one, across one, across three, the
        // tail, past the end.
        for (count, offset) in [
            (100, 10), (10, block - 10), (10, block), (20, block - 10), (2 * block + 7, block - 3), (block, 2 * block),
            (4096, 3 * block + 100), (1, content.count - 1), (10, content.count), (10, content.count + 5), (content.count, 0),
        ] {
            expectSameBytes(try read(count, at: offset), expected(count, at: offset), "\(count) bytes at \(offset)")
        }
        // The directory's one-GET open reads the same bytes.
        let opened = try driver.directory(path("/blob")).open("data")
        #expect(opened.kind == .file && opened.size == Int64(content.count))
        var buffer = [UInt8](repeating: 0, count: content.count + 1)
        let n = try buffer.withUnsafeMutableBytes { try opened.reader!.read(into: $0, at: 0) }
        expectSameBytes(Array(buffer[..<n]), content, "through the directory")
    }

    /// A ranged GET written straight into its destination is taken only when the answer's
    /// Content-Range names exactly the bytes that came, from the byte asked for; and a GET into a
    /// buffer reads the same bytes as one into an array, the object's end included.
    @Test func aRangeIntoABufferIsCheckedAgainstItsContentRange() throws {
        #expect(S3Client.objectSize(contentRange: "bytes 100-199/1000", first: 100, last: 199, received: 100) == 1000)
        #expect(S3Client.objectSize(contentRange: "bytes 900-999/1000", first: 900, last: 1099, received: 100) == 1000, "the object's end")
        for (range, why) in [
            ("bytes 0-99/1000", "shifted: another start"), ("bytes 100-198/1000", "fewer bytes named than came"),
            ("bytes 100-299/1000", "more than asked for"), ("bytes 100-199/*", "no size"), ("bytes 100-199/150", "past the size"),
            ("", "none"), ("items 100-199/1000", "not bytes"),
        ] {
            #expect(S3Client.objectSize(contentRange: range, first: 100, last: 199, received: 100) == nil, "\(why): \(range)")
        }

        let server = try MotoServer.shared()
        let client = S3Fixture.client(endpoint: server.endpoint, bucket: server.bucket)
        let key = "range-into-\(UUID().uuidString)"
        let content = seededBytes(count: 300_001, seed: 15)
        try client.put(key, content)
        var buffer = [UInt8](repeating: 0, count: 100_000)
        for first in [0, 123_457, 250_000] {
            let answer = try buffer.withUnsafeMutableBytes { try client.getRange(key, first: Int64(first), into: $0) }
            let expected = Array(content[first..<min(first + buffer.count, content.count)])
            #expect(answer?.count == expected.count && answer?.objectSize == Int64(content.count), "at \(first): \(String(describing: answer))")
            expectSameBytes(Array(buffer[..<expected.count]), expected, "\(buffer.count) bytes at \(first)")
        }
        #expect(try buffer.withUnsafeMutableBytes { try client.getRange(key, first: Int64(content.count), into: $0) } == nil, "past the end: 416")
    }

    /// A reader's copy into a local file (what the blob cache's fetch does): each range lands at
    /// its own offset of the file, the block the open fetched included, a range past the end
    /// copies what there is; a file that cannot be written fails at once with the disk's errno
    /// and the file's path, not as an outage of the store and not after the client's retries.
    @Test(arguments: S3ServerKind.allCases) func aReaderCopiesRangesIntoAFileAtTheirOffsets(server: S3ServerKind) async throws {
        let block = 64 << 10
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("copies"), tuning: S3DriverTuning(readBlockSize: block))
        let content = seededBytes(count: 5 * block + 321, seed: 16)
        try driver.putContent(path("/blob/data"), content)
        let directory = try TemporaryDirectory(prefix: "blobfs-s3-copy")
        defer { directory.remove() }
        let file = directory.path + "/copy"
        let fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        let reader = try driver.reader(path("/blob/data"))
        // Out of order, as a fetch's copiers finish: the last range first (it runs past the end),
        // then the middle, then the first block, which the open already brought.
        for (offset, count, expected) in [(3 * block, 3 * block, 2 * block + 321), (block, 2 * block, 2 * block), (0, block, block)] {
            #expect(try reader.copy(at: Int64(offset), count: count, intoFile: fd, localPath: file) == expected, "\(count) bytes at \(offset)")
        }
        var copied = [UInt8](repeating: 0, count: content.count + 1)
        #expect(copied.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) } == content.count)
        expectSameBytes(Array(copied[..<content.count]), content, "the file after the copies")

        let readOnly = open(file, O_RDONLY | O_CLOEXEC)
        try #require(readOnly >= 0)
        defer { close(readOnly) }
        let started = ContinuousClock.now
        let error = #expect(throws: StorageDriverError.self) { try reader.copy(at: Int64(block), count: block, intoFile: readOnly, localPath: file) }
        #expect(ContinuousClock.now - started < .seconds(5), "not retried")
        guard case .io(_, let failedPath, let code)? = error else {
            Issue.record("expected the write's io error, got \(String(describing: error))")
            return
        }
        #expect(code == EBADF && failedPath == file, "\(String(describing: error))")
    }

    @Test(arguments: S3ServerKind.allCases) func aReaderReadsTheVersionItOpenedOrFails(server: S3ServerKind) async throws {
        let block = 64 << 10
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("versions"), tuning: S3DriverTuning(readBlockSize: block))
        let first = seededBytes(count: 2 * block, seed: 20)
        try driver.putContent(path("/d/f"), first)
        for opened in [try driver.reader(path("/d/f")), try driver.directory(path("/d")).open("f").reader!] {
            try driver.putContent(path("/d/f"), first)
            var buffer = [UInt8](repeating: 0, count: 100)
            #expect(try buffer.withUnsafeMutableBytes { try opened.read(into: $0, at: 10) } == 100)
            expectSameBytes(buffer, Array(first[10..<110]))
            // Replaced by other bytes of the same size: the next block is not mixed in.
            try driver.putContent(path("/d/f"), seededBytes(count: 2 * block, seed: 21))
            let error = #expect(throws: StorageDriverError.self) { try buffer.withUnsafeMutableBytes { try opened.read(into: $0, at: Int64(block)) } }
            guard case .io(_, _, let code)? = error else {
                Issue.record("expected an io error, got \(String(describing: error))")
                continue
            }
            #expect(code == ESTALE)
            #expect(throws: StorageDriverError.self) { try opened.currentSize() }
        }
    }

    @Test(arguments: S3ServerKind.allCases) func writesMoreThanAPartAsAMultipartUploadAndAppendsByCopy(server: S3ServerKind) async throws {
        let part = S3DriverTuning.minimumPartSize
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("multipart"), tuning: S3DriverTuning(partSize: part))
        let content = seededBytes(count: 2 * part + 777_777, seed: 5)
        let target = path("/blobs/big/data")
        let writer = try driver.writer(target, append: false)
        var offset = 0
        while offset < content.count {
            let end = min(offset + 1_000_003, content.count)  // not a divisor of the part size
            try content[offset..<end].withUnsafeBytes { try writer.write($0) }
            offset = end
        }
        #expect(writer.size == Int64(content.count))
        // Two parts are up, but nothing is visible before the commit.
        #expect(throws: StorageDriverError.pathNotFound(target.value)) { try driver.stat(target) }
        #expect(try driver.client.multipartUploads(prefix: driver.prefix).count == 1)
        try writer.commit()
        writer.close()
        #expect(try driver.stat(target).size == Int64(content.count))
        expectSameBytes(try driver.getContent(target, limit: 64 << 20), content)
        #expect(try driver.client.multipartUploads(prefix: driver.prefix).isEmpty)

        // Appending to an object of more than a part: the server copies it as the first part.
        let appender = try driver.writer(target, append: true)
        #expect(appender.size == Int64(content.count))
        let more = seededBytes(count: 1000, seed: 6)
        try more.withUnsafeBytes { try appender.write($0) }
        try appender.commit()
        appender.close()
        expectSameBytes(try driver.getContent(target, limit: 64 << 20), content + more)
        #expect(try keys(driver) == [driver.prefix + "blobs/big/data"])  // no directory markers
    }

    @Test(arguments: S3ServerKind.allCases) func cancelAbortsTheMultipartUpload(server: S3ServerKind) async throws {
        let part = S3DriverTuning.minimumPartSize
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("cancel"), tuning: S3DriverTuning(partSize: part))
        let writer = try driver.writer(path("/up/data"), append: false)
        try seededBytes(count: part + 10, seed: 7).withUnsafeBytes { try writer.write($0) }
        #expect(try driver.client.multipartUploads(prefix: driver.prefix).count == 1)
        try writer.cancel()
        #expect(try driver.client.multipartUploads(prefix: driver.prefix).isEmpty)
        #expect(throws: StorageDriverError.pathNotFound("/up/data")) { try driver.stat(path("/up/data")) }
        #expect(try keys(driver) == [])
    }

    @Test(arguments: S3ServerKind.allCases) func moveCopiesSmallObjectsWholeAndLargeOnesInParts(server: S3ServerKind) async throws {
        let tuning = S3DriverTuning(copyThreshold: 1 << 20, copyPartSize: Int64(S3DriverTuning.minimumPartSize))
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("move"), tuning: tuning)
        let small = seededBytes(count: 1 << 20, seed: 8)  // at the threshold: CopyObject
        let large = seededBytes(count: 2 * S3DriverTuning.minimumPartSize + 12_345, seed: 9)  // three UploadPartCopy parts
        try driver.putContent(path("/_uploads/a/data"), small)
        try driver.putContent(path("/_uploads/b/data"), large)
        try driver.move(from: path("/_uploads/a/data"), to: path("/blobs/a/data"))
        try driver.move(from: path("/_uploads/b/data"), to: path("/blobs/b/data"))
        expectSameBytes(try driver.getContent(path("/blobs/a/data"), limit: 64 << 20), small)
        expectSameBytes(try driver.getContent(path("/blobs/b/data"), limit: 64 << 20), large)
        // A reader of the copy reads under If-Match with the copy's ETag: a multipart one
        // (`…-3`) on radosgw, which keeps it through UploadPartCopy.
        let reader = try driver.reader(path("/blobs/b/data"))
        var buffer = [UInt8](repeating: 0, count: 10_000)
        let offset = S3DriverTuning.minimumPartSize - 5_000
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: Int64(offset)) } == buffer.count)
        expectSameBytes(buffer, Array(large[offset..<(offset + buffer.count)]), "across the first part's end of the copy")
        #expect(throws: StorageDriverError.pathNotFound("/_uploads")) { try driver.stat(path("/_uploads")) }
        #expect(try driver.client.multipartUploads(prefix: driver.prefix).isEmpty)
        try driver.move(from: path("/blobs/a/data"), to: path("/blobs/a/data"))  // onto itself: kept
        expectSameBytes(try driver.getContent(path("/blobs/a/data"), limit: 64 << 20), small)
    }

    @Test(arguments: S3ServerKind.allCases) func missingKeysAreNotFoundAndDirectoriesWriteNothing(server: S3ServerKind) async throws {
        let driver = try await S3Fixture.driver(on: server, rootDirectory: S3Fixture.uniqueRoot("missing"))
        let missing = path("/no/such/key")
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.getContent(missing) }
        // The 404's XML is longer than the limit: still not found, not "too large".
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.getContent(missing, limit: 2) }
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.stat(missing) }
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.reader(missing) }
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.delete(missing) }
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.move(from: missing, to: path("/x")) }
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.list(missing) }
        #expect(throws: StorageDriverError.pathNotFound(missing.value)) { try driver.directory(missing) }
        try driver.createDirectory(path("/empty/dir"))
        #expect(throws: StorageDriverError.pathNotFound("/empty")) { try driver.stat(path("/empty")) }
        #expect(try keys(driver) == [])
    }

    /// SigV4 canonicalisation where a server checks it: keys holding bytes the path must encode,
    /// listed in pages of one key, flat and by delimiter, so that every prefix and continuation
    /// token (radosgw's hold the last key, `/` and all) is sent back encoded and signed.
    @Test(arguments: S3ServerKind.allCases) func keysThatNeedEncodingListAndReadInPagesOfOne(server kind: S3ServerKind) async throws {
        let server = try await kind.shared()
        let client = S3Fixture.client(server)
        let root = String(S3Fixture.uniqueRoot("encoding").dropFirst()) + "/"
        let names = ["a/b/c", "a/b/d e", "a/b+c/=d", "a/u\u{308}/x", "a/~t%20,;:@/y", "a/z", "b"]
        for name in names { try client.put(root + name, Array(name.utf8)) }
        func byBytes(_ keys: [String]) -> [String] { keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } }

        func pages(prefix: String, delimiter: String?) throws -> (objects: [String], prefixes: [String], pages: Int) {
            var objects: [String] = []
            var prefixes: [String] = []
            var token: String?
            var count = 0
            repeat {
                let page = try client.list(prefix: prefix, delimiter: delimiter, continuationToken: token, maxKeys: 1)
                objects += page.objects.map(\.key)
                prefixes += page.prefixes
                token = page.nextToken
                count += 1
            } while token != nil && count < 100
            return (objects, prefixes, count)
        }
        let flat = try pages(prefix: root + "a/", delimiter: nil)
        #expect(flat.objects == byBytes(names.filter { $0.hasPrefix("a/") }.map { root + $0 }) && flat.prefixes == [])
        #expect(flat.pages >= 6, "pages of one key: \(flat.pages)")
        let grouped = try pages(prefix: root + "a/", delimiter: "/")
        #expect(grouped.objects == [root + "a/z"])
        #expect(grouped.prefixes == byBytes(["a/b+c/", "a/b/", "a/u\u{308}/", "a/~t%20,;:@/"].map { root + $0 }))
        for name in names {
            guard case .content(let bytes) = try client.get(root + name, limit: 100) else {
                Issue.record("\(name): not its content")
                continue
            }
            #expect(bytes == Array(name.utf8), "\(name)")
            #expect(try client.head(root + name).size == Int64(name.utf8.count), "\(name)")
        }
        // The tests' own signed listing (curl's SigV4) sees the same keys.
        #expect(try server.keys(prefix: root, pageSize: 2) == byBytes(names.map { root + $0 }))
        try client.delete(keys: names.map { root + $0 })
        #expect(try server.keys(prefix: root) == [])
    }

    /// radosgw checks every signature: a wrong secret is EACCES, not a missing key.
    @Test func radosgwRefusesAWrongSecret() async throws {
        let server = try await RadosGWServer.shared()
        let driver = S3Driver(
            client: S3Fixture.client(
                endpoint: server.endpoint, bucket: server.bucket, credentials: S3Credentials(accessKey: server.accessKey, secretKey: "wrong"),
                maxAttempts: 1),
            rootDirectory: S3Fixture.uniqueRoot("refused"))
        let error = #expect(throws: StorageDriverError.self) { try driver.getContent(path("/f")) }
        guard case .io(_, _, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == EACCES)
    }

    /// moto with signature checks on: the requests the driver signs pass (PUT with its payload
    /// hash, GET, ranged GET, HEAD, CopyObject, DELETE), and a wrong secret is EACCES.
    @Test func signedRequestsPassAServerThatChecksSignatures() throws {
        let server = try MotoServer()
        defer { server.stop() }
        let key = try server.enforceSignatures()
        func driver(secret: String) -> S3Driver {
            S3Driver(
                client: S3Client(
                    S3Configuration(
                        endpoint: server.endpoint, bucket: server.bucket, credentials: S3Credentials(accessKey: key.accessKey, secretKey: secret),
                        maxAttempts: 1)),
                rootDirectory: "/signed")
        }
        let signed = driver(secret: key.secretKey)
        let content = seededBytes(count: 300_000, seed: 12)
        try signed.putContent(path("/blob"), content)
        expectSameBytes(try signed.getContent(path("/blob"), limit: 1 << 20), content)
        #expect(try signed.stat(path("/blob")).size == Int64(content.count))
        var buffer = [UInt8](repeating: 0, count: 1000)
        let reader = try signed.reader(path("/blob"))
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 5000) } == 1000)
        expectSameBytes(buffer, Array(content[5000..<6000]), "a ranged read")
        try signed.move(from: path("/blob"), to: path("/moved"))
        expectSameBytes(try signed.getContent(path("/moved"), limit: 1 << 20), content, "after CopyObject")

        let error = #expect(throws: StorageDriverError.self) { try driver(secret: "wrong").getContent(path("/moved")) }
        guard case .io(_, _, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == EACCES)
    }

    @Test func aStoppedServerIsAnErrorWithinTheDeadline() throws {
        let server = try MotoServer()
        defer { server.stop() }
        let client = S3Fixture.client(endpoint: server.endpoint, bucket: server.bucket, requestTimeout: .seconds(2), maxAttempts: 3, retryBudget: .seconds(5))
        let driver = S3Driver(client: client, rootDirectory: "/outage")
        try driver.putContent(path("/f"), [1, 2, 3])
        let reader = try driver.reader(path("/f"))
        server.stop()

        let started = ContinuousClock.now
        let error = #expect(throws: StorageDriverError.self) { try driver.getContent(path("/f")) }
        #expect(ContinuousClock.now - started < .seconds(6))
        guard case .io(let operation, let failedPath, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == EIO && failedPath == "/f")
        #expect(operation.contains("127.0.0.1:\(server.port)"), "the message names the endpoint: \(operation)")
        var buffer = [UInt8](repeating: 0, count: 3)
        #expect(throws: StorageDriverError.self) { try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 0) } }
    }

    @Test func aServerThatDoesNotAnswerIsAnErrorWithinTheDeadline() throws {
        let server = try FaultyHTTPServer(stall: 120)
        defer { server.stop() }
        let client = S3Fixture.client(
            endpoint: server.endpoint, bucket: "stalled", requestTimeout: .milliseconds(700), maxAttempts: 3, retryBudget: .seconds(3))
        let driver = S3Driver(client: client)
        let started = ContinuousClock.now
        let error = #expect(throws: StorageDriverError.self) { try driver.stat(path("/any")) }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(5), "took \(elapsed)")
        #expect(elapsed >= .milliseconds(700), "a stalled request waits for its own deadline: \(elapsed)")
        guard case .io(let operation, _, let code)? = error else {
            Issue.record("expected an io error, got \(String(describing: error))")
            return
        }
        #expect(code == EIO)
        #expect(operation.contains("timed out") && operation.contains(server.endpoint), "\(operation)")
    }
}
