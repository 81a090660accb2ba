/// What the storage layer knows of a blob: its canonical digest, size and media type.
public struct Descriptor: Sendable, Hashable, CustomStringConvertible {
    /// The media type of every blob the filesystem stores; no media type is kept on disk.
    public static let octetStream = "application/octet-stream"

    public var digest: Digest
    public var size: Int64
    public var mediaType: String

    public init(digest: Digest, size: Int64, mediaType: String = Descriptor.octetStream) {
        self.digest = digest
        self.size = size
        self.mediaType = mediaType
    }

    /// The cache admission rule (docs/storage-format.md, The descriptor cache): size ≥ 0 and a
    /// media type.
    public func validate() throws(BlobError) {
        guard size >= 0 else { throw .invalidDescriptor("negative size \(size) for \(digest)") }
        guard !mediaType.isEmpty else { throw .invalidDescriptor("empty media type for \(digest)") }
    }

    public var description: String { "\(digest) (\(size) bytes, \(mediaType))" }
}
