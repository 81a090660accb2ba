import CoreMetrics
import Instrumentation
import MetricsTestKit
import StorageDriver
import Testing
import TestSupport

/// `InstrumentedDriver` changes nothing a driver does and counts every call by operation: a
/// failure as an error, a path that does not exist as a plain answer.
@Suite struct InstrumentedDriverTests {
    func path(_ text: String) -> DriverPath { try! DriverPath(text) }

    func requests(_ test: TestMetrics, _ operation: String) throws -> Int64 {
        try test.expectCounter("blobfs_storage_requests_total", [("operation", operation)]).totalValue
    }

    func errors(_ test: TestMetrics, _ operation: String) throws -> Int64 {
        try test.expectCounter("blobfs_storage_errors_total", [("operation", operation)]).totalValue
    }

    @Test func countsEachCallAndItsFailuresByOperation() throws {
        let test = TestMetrics()
        let driver = InstrumentedDriver(InMemoryDriver(), metrics: BlobfsMetrics(version: "test", factory: test))

        try driver.putContent(path("/a/b"), Array("hello".utf8))
        #expect(try driver.getContent(path("/a/b")) == Array("hello".utf8))
        #expect(try driver.stat(path("/a/b")).size == 5)
        #expect(throws: StorageDriverError.self) { try driver.stat(path("/a/missing")) }
        #expect(throws: StorageDriverError.self) { try driver.getContent(path("/a")) }  // a directory
        let writer = try driver.writer(path("/a/c"), append: false)
        try Array("abc".utf8).withUnsafeBytes { try writer.write($0) }
        try Array("def".utf8).withUnsafeBytes { try writer.write($0) }
        try writer.commit()
        let reader = try driver.reader(path("/a/c"))
        var buffer = [UInt8](repeating: 0, count: 6)
        let read = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 0) }
        #expect(read == 6 && buffer == Array("abcdef".utf8))
        #expect(try driver.list(path("/a")) == ["b", "c"])

        #expect(try requests(test, "put_content") == 1)
        #expect(try requests(test, "get_content") == 2)
        #expect(try errors(test, "get_content") == 1, "reading a directory is a failure")
        #expect(try requests(test, "stat") == 2)
        #expect(try errors(test, "stat") == 0, "a path that does not exist is an answer, not a failure")
        #expect(try requests(test, "writer") == 1)
        #expect(try requests(test, "write") == 2)
        #expect(try requests(test, "commit") == 1)
        #expect(try requests(test, "reader") == 1)
        #expect(try requests(test, "read") == 1)
        #expect(try requests(test, "list") == 1)
        #expect(try requests(test, "move") == 0)
        let statDurations = try test.expectRecorder("blobfs_storage_request_duration_seconds", [("operation", "stat")])
        #expect(statDurations.values.count == 2 && statDurations.values.allSatisfy { $0 >= 0 && $0 < 10 }, "seconds: \(statDurations.values)")
    }

    @Test func aFilesystemDriversFilesKeepTheirDescriptorVersionOwnerAndCapacity() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let base = try FilesystemDriver(root: directory.path)
        let driver = InstrumentedDriver(base, metrics: BlobfsMetrics(version: "test", factory: TestMetrics()))
        try driver.putContent(path("/blob"), Array(repeating: 7, count: 4096))
        let reader = try driver.reader(path("/blob"))
        let direct = try base.reader(path("/blob"))
        // Passthrough needs the data file's descriptor and version through the decorator.
        #expect(reader.localDescriptor != nil)
        #expect(try reader.version() == direct.version())
        #expect(try reader.currentSize() == 4096)
        #expect(driver.owner == base.owner)
        // The figures that do not move while other processes write to the same disk.
        let (counted, plain) = (try #require(try driver.capacity()), try #require(try base.capacity()))
        #expect(counted.blockSize == plain.blockSize && counted.blocks == plain.blocks && counted.files == plain.files)
        #expect(driver.name == base.name)
    }
}
