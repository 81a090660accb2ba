import Distribution

/// A blob's `data` file as a stat found it: what the registry would serve, and when it was written.
public struct BlobDataFile: Sendable, Hashable {
    public var descriptor: Descriptor
    /// Modification time, seconds since the epoch.
    public var modified: Int64

    public init(descriptor: Descriptor, modified: Int64) {
        self.descriptor = descriptor
        self.modified = modified
    }
}
