import Distribution
import Testing

/// A reader over bytes in memory.
final class BytesReader: BlobReader {
    let bytes: [UInt8]
    let descriptor: Descriptor
    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        descriptor = Descriptor(digest: Digester.digest(of: bytes), size: Int64(bytes.count))
    }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlobError) -> Int {
        guard offset < bytes.count else { return 0 }
        let n = min(buffer.count, bytes.count - Int(offset))
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
        return n
    }
}

/// The registry's TestFileReaderSeek, on the stream rules.
@Suite struct BlobStreamTests {
    @Test func seeksLikeTheRegistrysFileReader() throws {
        let pattern = Array("abcdefghijklm".utf8)  // 13 bytes
        let repeats = 1000
        let content = (0..<repeats).flatMap { _ in pattern }
        var stream = BlobStream(BytesReader(content))
        var generator = SystemRandomNumberGenerator()
        for repeatIndex in (0..<repeats).shuffled(using: &generator).prefix(200) {
            let target = Int64(repeatIndex * pattern.count)
            #expect(try stream.seek(target, from: .start) == target)
            #expect(try stream.read(count: pattern.count) == pattern)
            #expect(stream.offset == target + Int64(pattern.count))
        }
        #expect(try stream.seek(0, from: .start) == 0)
        #expect(try stream.seek(0, from: .end) == Int64(content.count))
        // A negative result is refused and leaves the offset where it was.
        #expect(throws: BlobError.self) { try stream.seek(-1, from: .start) }
        #expect(stream.offset == Int64(content.count))
        // Past the end is allowed; reading there gives nothing.
        #expect(try stream.seek(1, from: .end) == Int64(content.count) + 1)
        #expect(try stream.read(count: 10).isEmpty)
        // Back to the start: everything again.
        try stream.seek(0, from: .start)
        #expect(try stream.readToEnd() == content)
    }
}
