/// A seekable cursor over a `BlobReader`, with the registry's fileReader rules
/// (docs/storage-format.md, Reading a blob): offsets relative to the known size, seeking past the
/// end allowed (reads then return 0), negative results refused with the offset unchanged.
public struct BlobStream {
    /// Where `seek` counts from.
    public enum Whence: Sendable { case start, current, end }

    public let reader: any BlobReader
    public private(set) var offset: Int64 = 0

    public init(_ reader: any BlobReader) { self.reader = reader }

    /// Moves the cursor; returns the new offset.
    @discardableResult
    public mutating func seek(_ delta: Int64, from whence: Whence) throws(BlobError) -> Int64 {
        let base: Int64 =
            switch whence {
            case .start: 0
            case .current: offset
            case .end: reader.descriptor.size
            }
        let (target, overflow) = base.addingReportingOverflow(delta)
        guard !overflow, target >= 0 else {
            throw .unsupported("seek to a negative or overflowing offset (\(base) + \(delta))")
        }
        offset = target
        return target
    }

    /// Reads at the cursor and advances it; 0 means the end of the blob.
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(BlobError) -> Int {
        guard offset < reader.descriptor.size else { return 0 }
        let n = try reader.read(into: buffer, at: offset)
        offset += Int64(n)
        return n
    }

    /// Reads up to `count` bytes.
    public mutating func read(count: Int) throws(BlobError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try bytes.withUnsafeMutableBytes { raw in Result { () throws(BlobError) in try read(into: raw) } }.get()
        bytes.removeSubrange(n...)
        return bytes
    }

    /// Reads from the cursor to the end.
    public mutating func readToEnd() throws(BlobError) -> [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(Int(max(0, reader.descriptor.size - offset)))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { raw in Result { () throws(BlobError) in try read(into: raw) } }.get()
            if n == 0 { return result }
            result.append(contentsOf: chunk[..<n])
        }
    }
}
