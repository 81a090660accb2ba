import Distribution
import StorageDriver

/// How much room the store has, as `df` shows it for a mount (the driver's answer: a local
/// filesystem's statvfs; nil for storage that cannot tell). Vended here so that the filesystem
/// layer names it without knowing which driver answers.
public typealias StoreCapacity = StorageCapacity
/// Who owns the store; a mount shows every file as theirs.
public typealias StoreOwner = StorageOwner

extension Registry {
    /// The store's capacity, for statfs; nil where the driver cannot tell.
    public func capacity() throws(BlobError) -> StoreCapacity? {
        try driverCall { () throws(StorageDriverError) in try driver.capacity() }
    }

    /// The store's owner; nil where the driver has none.
    public var owner: StoreOwner? { driver.owner }
}
