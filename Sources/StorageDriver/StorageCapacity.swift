/// How much room a storage has, as `df` shows it for a mount of it (statvfs(3)'s fields).
public struct StorageCapacity: Sendable, Hashable {
    public var blockSize: UInt64
    public var fragmentSize: UInt64
    /// In units of `fragmentSize`.
    public var blocks: UInt64
    public var freeBlocks: UInt64
    /// Free to unprivileged users.
    public var availableBlocks: UInt64
    public var files: UInt64
    public var freeFiles: UInt64
    public var availableFiles: UInt64
    public var nameMax: UInt64

    public init(
        blockSize: UInt64, fragmentSize: UInt64, blocks: UInt64, freeBlocks: UInt64, availableBlocks: UInt64, files: UInt64,
        freeFiles: UInt64, availableFiles: UInt64, nameMax: UInt64
    ) {
        self.blockSize = blockSize
        self.fragmentSize = fragmentSize
        self.blocks = blocks
        self.freeBlocks = freeBlocks
        self.availableBlocks = availableBlocks
        self.files = files
        self.freeFiles = freeFiles
        self.availableFiles = availableFiles
        self.nameMax = nameMax
    }
}

/// Who owns a storage, by user and group id: a mount shows its files as theirs.
public struct StorageOwner: Sendable, Hashable {
    public var user: UInt32
    public var group: UInt32

    public init(user: UInt32, group: UInt32) {
        self.user = user
        self.group = group
    }
}
