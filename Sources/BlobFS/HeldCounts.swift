/// What a mount holds at one moment, for the metrics' gauges (`blobfs_inodes`,
/// `blobfs_open_handles`, `blobfs_uploads_in_progress`): read when metrics are scraped, so that
/// no request pays for them. Each table's leaf lock is taken in turn, never two at once.
public struct HeldCounts: Sendable, Hashable {
    public var inodes: Int
    public var handles: Int
    public var uploads: Int
}

extension BlobFileSystem {
    public var held: HeldCounts {
        HeldCounts(inodes: inodes.count, handles: handles.count, uploads: uploads.count)
    }
}
