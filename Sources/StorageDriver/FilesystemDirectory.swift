import CLinux
import Glibc

/// A directory of a `FilesystemDriver` held by descriptor. Paths below it are opened with
/// openat2(2) relative to it, still beneath it and without following any symbolic link: the
/// directory itself was opened that way from the root, so the confinement is the root's.
/// Resolving two or three components instead of eight is most of what a small file's open costs.
final class FilesystemDirectory: DriverDirectory {
    let path: DriverPath
    private let driver: FilesystemDriver
    private let fd: Int32

    /// Takes ownership of `fd`, a directory opened beneath the driver's root.
    init(driver: FilesystemDriver, fd: Int32, path: DriverPath) {
        self.driver = driver
        self.fd = fd
        self.path = path
    }

    deinit { Glibc.close(fd) }

    private func fullPath(_ relative: String) -> String { path.value + "/" + relative }

    func entries() throws(StorageDriverError) -> [DirectoryEntry] {
        // A descriptor of its own for fdopendir, which takes it over and moves its offset.
        let listing = blobfs_openat_beneath(fd, ".", O_RDONLY | O_DIRECTORY, 0)
        guard listing >= 0 else { throw failure("open", path, errno) }
        return try FilesystemDriver.entries(ofDirectory: listing, path).compactMap { entry in
            guard DriverPath.isValid("/" + entry.name) else { return nil }  // a name the grammar refuses is no registry data
            if let kind = entry.kind { return DirectoryEntry(name: entry.name, kind: kind) }
            // DT_UNKNOWN: one name in this directory, not followed if it is a link.
            var st = Glibc.stat()
            guard fstatat(fd, entry.name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
            return DirectoryEntry(name: entry.name, kind: FileInfo.kind(of: st.st_mode))
        }.sorted { $0.name < $1.name }
    }

    func directory(_ name: String) throws(StorageDriverError) -> any DriverDirectory {
        let child = blobfs_openat_beneath(fd, name, O_RDONLY | O_DIRECTORY, 0)
        guard child >= 0 else { throw failure("open", fullPath(name), errno) }
        return FilesystemDirectory(driver: driver, fd: child, path: try path.appending(name))
    }

    func open(_ relative: String) throws(StorageDriverError) -> OpenedFile {
        // O_NONBLOCK: a FIFO in the store must not hang the open; it is a no-op on regular files.
        let flags = O_RDONLY | O_NONBLOCK | O_NOCTTY
        let fd = driver.openWithoutAtime(self.fd, relative, flags)
        guard fd >= 0 else { throw failure("open", fullPath(relative), errno) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw failure("stat", fullPath(relative), code)
        }
        let kind = FileInfo.kind(of: st.st_mode)
        guard kind == .file else {
            Glibc.close(fd)
            return OpenedFile(kind: kind, size: 0, reader: nil)
        }
        return OpenedFile(kind: kind, size: Int64(st.st_size), reader: FilesystemFileReader(fd: fd, path: fullPath(relative)))
    }

    func stat(_ relative: String) throws(StorageDriverError) -> FileInfo {
        let fd = blobfs_openat_beneath(self.fd, relative, O_PATH, 0)
        guard fd >= 0 else { throw failure("open", fullPath(relative), errno) }
        defer { Glibc.close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw failure("stat", fullPath(relative), errno) }
        return FileInfo(path: try DriverPath(fullPath(relative)), status: st)
    }
}
