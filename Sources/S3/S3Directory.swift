import StorageDriver

/// A directory of an S3 bucket: a key prefix. Nothing is held open; what it saves over the
/// path-based fallback is requests: `entries` is one delimited listing with the kinds in it (no
/// stat per child), and `open` is one GET (no HEAD first).
final class S3Directory: DriverDirectory {
    let driver: S3Driver
    let path: DriverPath

    init(driver: S3Driver, path: DriverPath) {
        self.driver = driver
        self.path = path
    }

    func entries() throws(StorageDriverError) -> [DirectoryEntry] {
        try driver.listEntries(path)
    }

    func directory(_ name: String) throws(StorageDriverError) -> any DriverDirectory {
        try driver.directory(try path.appending(name))
    }

    /// One ranged GET of the first block: a file's size and first bytes; on 404, a directory if
    /// keys lie below.
    func open(_ relative: String) throws(StorageDriverError) -> OpenedFile {
        let child = try DriverPath(path.value + "/" + relative)
        do throws(StorageDriverError) {
            let reader = try S3FileReader.open(driver: driver, path: child)
            return OpenedFile(kind: .file, size: reader.knownSize, reader: reader)
        } catch .pathNotFound {
            guard try driver.hasKeys(below: child) else { throw .pathNotFound(child.value) }
            return OpenedFile(kind: .directory, size: 0, reader: nil)
        }
    }

    func stat(_ relative: String) throws(StorageDriverError) -> FileInfo {
        try driver.stat(try DriverPath(path.value + "/" + relative))
    }
}
