@testable import BlobFS
import Glibc
import Logging
@testable import Storage
import Testing

/// `PassthroughFiles` without a kernel: on a descriptor that is no FUSE device, every backing open
/// fails (EBADF or ENOTTY), which shows the fallbacks and the per-inode counting.
@Suite struct PassthroughFilesTests {
    private let logger = Logger(label: "blobfs.test")

    /// An open regular file, already unlinked, to stand for the FUSE device: it has no FUSE ioctls
    /// (ENOTTY, as a kernel without backing files answers).
    private static func regularFile() throws -> Int32 {
        let path = "/tmp/blobfs-passthrough-files-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(fd >= 0, "open \(path): errno \(errno)")
        unlink(path)
        return fd
    }

    @Test func anOpenWithoutABackingFileIsTheDaemonsAndIsCountedUntilReleased() {
        let files = PassthroughFiles(logger: logger)
        #expect(files.admit(7, backing: nil) == .daemon)
        #expect(files.admit(7, backing: nil) == .daemon)
        #expect(files.hasDaemonOpens(7) && !files.hasDaemonOpens(8))
        files.release(7, .daemon)
        #expect(files.hasDaemonOpens(7))
        files.release(7, .daemon)
        #expect(!files.hasDaemonOpens(7))
        #expect(files.counts == PassthroughFiles.Counts(passthroughOpens: 0, daemonOpens: 2, backingOpened: 0, backingClosed: 0))
        #expect(files.refusal == nil)
    }

    @Test func aBackingOpenTheKernelRefusesForOneFileLeavesPassthroughOn() throws {
        let files = PassthroughFiles(logger: logger)
        files.attach(device: -1)  // EBADF: a per-file failure
        let backing = LocalDataFile(descriptor: 0, size: 1)
        #expect(files.admit(3, backing: backing) == .daemon)
        #expect(files.refusal == nil)
        #expect(files.counts.backingOpened == 0 && files.openBackingIDs == 0)
        files.release(3, .daemon)
        #expect(!files.hasDaemonOpens(3))
    }

    @Test func aDeviceWithoutBackingFilesTurnsPassthroughOffForTheMount() throws {
        // A regular file has no FUSE ioctls: ENOTTY, as a kernel without backing files answers.
        let fd = try Self.regularFile()
        defer { close(fd) }
        let files = PassthroughFiles(logger: logger)
        files.attach(device: fd)
        #expect(files.admit(5, backing: LocalDataFile(descriptor: fd, size: 0)) == .daemon)
        #expect(files.refusal == "the kernel has no FUSE backing files")
        files.probe()
        #expect(files.refusal == "the kernel has no FUSE backing files")
        // Off for the mount: no further backing open is tried, and opens are still counted.
        #expect(files.admit(6, backing: LocalDataFile(descriptor: fd, size: 0)) == .daemon)
        #expect(files.counts.daemonOpens == 2 && files.counts.backingOpened == 0)
    }

    @Test func theProbeOnADeviceWithoutBackingFilesSaysWhy() throws {
        let fd = try Self.regularFile()
        defer { close(fd) }
        let files = PassthroughFiles(logger: logger)
        files.attach(device: fd)
        #expect(files.refusal == nil)
        files.probe()
        #expect(files.refusal == "the kernel has no FUSE backing files")
    }

    @Test func whileABlobIsOpenForWritingNoBackingOpenIsTriedForIt() throws {
        // A regular file as the device: a backing open tried would turn passthrough off (ENOTTY),
        // which shows whether one was tried.
        let fd = try Self.regularFile()
        defer { close(fd) }
        let files = PassthroughFiles(logger: logger)
        files.attach(device: fd)
        #expect(files.beginWrite(9) == nil, "no passthrough opens: nothing to wait for")
        #expect(files.admit(9, backing: LocalDataFile(descriptor: fd, size: 0)) == .daemon)
        #expect(files.refusal == nil, "a backing open was tried for an inode open for writing")
        files.release(9, .daemon)
        files.endWrite(9)
        #expect(files.admit(9, backing: LocalDataFile(descriptor: fd, size: 0)) == .daemon)
        #expect(files.refusal == "the kernel has no FUSE backing files", "no backing open was tried once the writer was gone")
    }
}
