/// One version of a file's content as the filesystem identifies it. A write to the content always
/// moves the change time, which the file's owner cannot set back (only the clock can), so a file
/// whose five fields are unchanged has not been written since.
public struct FileVersion: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// Modification time, nanoseconds since the epoch.
    public var modified: Int64
    /// Status change time, nanoseconds since the epoch.
    public var changed: Int64

    public init(device: UInt64, inode: UInt64, size: Int64, modified: Int64, changed: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modified = modified
        self.changed = changed
    }
}
