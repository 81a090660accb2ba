import StorageDriver

/// One version of a blob's data file, as the driver identifies it (device, inode, size and the
/// modification and change times): a file whose version is unchanged has not been written
/// since. The filesystem keys what it has verified by it (a blob checked at its first read, a
/// ledger entry) and refuses to serve a version it did not check, without knowing the driver.
public typealias DataFileVersion = FileVersion
