import Distribution
import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

/// Kernel passthrough on real mounts: verified blobs are read by the kernel straight from their
/// data files (the daemon counts the READs it serves and logs them at unmount, with the opens by
/// mode and the backing files it opened and closed), everything else is served as before.
/// These run only where the kernel offers passthrough to this daemon; elsewhere they are skipped
/// with the reason the startup line gives.
@Suite(.enabled(if: PassthroughAvailability.reason == nil, PassthroughAvailability.comment))
struct PassthroughMountTests {
    @Test func aVerifiedBlobIsReadByTheKernelWithNoReadReachingTheDaemon() throws {
        let workspace = try Workspace("pt-read")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [
            ("pt/app", seededBytes(count: (8 << 20) + 4097, seed: 1300)),
            ("pt/app", seededBytes(count: 70_001, seed: 1301)),
        ])
        let ledger = workspace.path("verified.ledger")
        // A first mount hashes both blobs at their first open, before replying, and records them.
        let first = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--remember-verified", ledger, "--passthrough", "auto"])
        for blob in blobs {
            #expect(readAndCompare(first.path(blob.relativePath), expected: blob.bytes, chunk: 1 << 20) == nil)
        }
        #expect(first.stop().isClean)
        let firstServed = try #require(ServedCounts(first.log))
        #expect(firstServed.daemonReads == 0 && firstServed.passthroughOpens == 2, "\(firstServed)")
        let recorded = String(decoding: try Posix.readFile(ledger), as: UTF8.self)
        #expect(blobs.allSatisfy { recorded.contains($0.canonical.hex) }, "the ledger:\n\(recorded)")

        // The next mount trusts the ledger: read(2), mmap and a second reader all read through the
        // kernel, and not one READ reaches the daemon.
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--remember-verified", ledger, "--passthrough", "auto"])
        for blob in blobs {
            let path = mount.path(blob.relativePath)
            #expect(readAndCompare(path, expected: blob.bytes, chunk: 131_072) == nil)
            #expect(try mappedBytes(path) == blob.bytes, "mmap of \(blob)")
            let hashed = try Command.run("sha256sum", [path], timeout: 60)
            #expect(hashed.stdoutText.hasPrefix(blob.canonical.hex + " "), "\(hashed)")
        }
        let stopped = mount.stop()
        #expect(stopped.isClean, "\(stopped)")
        let served = try #require(ServedCounts(mount.log), "no summary in\n\(mount.log.tail(2000))")
        #expect(mount.log.contains("passthrough: on"))
        #expect(served.daemonReads == 0, "\(served)\n\(mount.log.tail(2000))")
        #expect(served.passthroughOpens >= 6 && served.daemonOpens == 0, "\(served)")
        #expect(served.backingOpened >= 2, "\(served)")
    }

    @Test func concurrentOpensShareOneBackingFileAndNoneIsLeftAfterAThousandCycles() throws {
        let workspace = try Workspace("pt-share")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/share", seededBytes(count: 3 << 20, seed: 1310))])[0]
        let mount = try BlobfsMount(
            root: workspace.root, mountpoint: workspace.mountpoint, options: ["--no-verify", "--log-level", "debug", "--passthrough", "auto"])
        defer { mount.stop() }
        let path = mount.path(blob.relativePath)

        // Eight readers hold the file open together: one backing file for all of them.
        let descriptors = OpenDescriptors()
        let problems = Problems()
        let finished = onThreads(8) { index in
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return problems.add("open \(index): \(Errno(errno))") }
            descriptors.add(fd)
            var byte: UInt8 = 0
            if pread(fd, &byte, 1, off_t(index * 4096)) != 1 || byte != blob.bytes[index * 4096] {
                problems.add("reader \(index): wrong byte")
            }
        }
        #expect(finished && problems.all.isEmpty, "\(problems.all)")
        #expect(descriptors.all.count == 8)
        #expect(backingFiles(in: mount.log) == (opened: 1, closed: 0), "\(mount.log.tail(2000))")
        for fd in descriptors.all { close(fd) }
        #expect(waitForBackingFiles(of: mount, opened: 1), "\(mount.log.tail(2000))")

        // A thousand opens and closes, one at a time: every backing file opened is closed again.
        for cycle in 0..<1000 {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                Issue.record("open \(cycle): \(Errno(errno))")
                break
            }
            var byte: UInt8 = 0
            let n = pread(fd, &byte, 1, off_t(cycle))
            close(fd)
            if n != 1 || byte != blob.bytes[cycle] {
                Issue.record("cycle \(cycle): wrong byte")
                break
            }
        }
        let counts = backingFiles(in: mount.log)
        #expect(counts.opened >= 2, "the cycles opened backing files again: \(counts)")
        #expect(waitForBackingFiles(of: mount, opened: counts.opened), "backing files left open: \(backingFiles(in: mount.log))")
        let stopped = mount.stop()
        #expect(stopped.isClean, "\(stopped)")
        let served = try #require(ServedCounts(mount.log))
        #expect(served.daemonReads == 0 && served.passthroughOpens == 1008 && served.daemonOpens == 0, "\(served)")
    }

    @Test func aBlobIsHashedAtItsFirstOpenAndACorruptOrEditedOneFailsThere() throws {
        let workspace = try Workspace("pt-verify")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [
            ("pt/verify", seededBytes(count: 16 << 20, seed: 1360)),  // eight first openers at once
            ("pt/verify", seededBytes(count: 1 << 20, seed: 1361)),  // corrupt before the mount
            ("pt/verify", seededBytes(count: 1 << 20, seed: 1362)),  // edited after it was read
            ("pt/verify", seededBytes(count: 1 << 20, seed: 1363)),  // shrunk after it was read
        ])
        let (shared, corrupt, edited, shrunk) = (blobs[0], blobs[1], blobs[2], blobs[3])
        func damage(_ blob: StoredBlob) throws {
            let fd = try Posix.open(dataPath(root: workspace.root, blob.digest), O_WRONLY).get()
            #expect(pwrite(fd, "CORRUPT", 7, 4096) == 7)
            close(fd)
        }
        try damage(corrupt)
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--passthrough", "auto"])
        defer { mount.stop() }

        // A corrupt blob fails open(2) itself: no byte of it is ever served.
        #expect(Posix.open(mount.path(corrupt.relativePath), O_RDONLY).errno == .EIO)
        // Eight first openers of one blob wait for one hash and all read through the kernel.
        let problems = Problems()
        let finished = onThreads(8) { index in
            if let problem = readAndCompare(mount.path(shared.relativePath), expected: shared.bytes, chunk: [4096, 1 << 20][index % 2]) {
                problems.add("reader \(index): \(problem)")
            }
        }
        #expect(finished && problems.all.isEmpty, "\(problems.all)\n\(mount.log.tail(2000))")
        // Edited in place after it was read: the next open hashes the new version, and fails.
        #expect(readAndCompare(mount.path(edited.relativePath), expected: edited.bytes, chunk: 65_536) == nil)
        try damage(edited)
        #expect(Posix.open(mount.path(edited.relativePath), O_RDONLY).errno == .EIO)
        // Shrunk after it was read: the next open is the daemon's (the size is not the blob's),
        // which fails the read rather than serve a short file.
        #expect(readAndCompare(mount.path(shrunk.relativePath), expected: shrunk.bytes, chunk: 65_536) == nil)
        #expect(truncate(dataPath(root: workspace.root, shrunk.digest), 100_000) == 0)
        let (bytes, error) = Posix.readAll(mount.path(shrunk.relativePath))
        #expect(error == .EIO && bytes.count < shrunk.bytes.count, "\(bytes.count) bytes, \(String(describing: error))")

        #expect(mount.stop().isClean)
        let log = mount.log
        #expect(log.contains(corrupt.canonical.hex) && log.contains(edited.canonical.hex) && log.contains("does not match"), "\(log.tail(3000))")
        let served = try #require(ServedCounts(log))
        #expect(served.passthroughOpens == 10 && served.daemonOpens == 1, "\(served)")
    }

    @Test func aPassthroughReaderKeepsReadingOnceTheDaemonIsGone() throws {
        let workspace = try Workspace("pt-gone")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/gone", seededBytes(count: 2 << 20, seed: 1370))])[0]
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--passthrough", "auto"])
        defer { mount.stop() }
        let reader = try Posix.open(mount.path(blob.relativePath), O_RDONLY | O_CLOEXEC).get()
        #expect(Posix.pread(reader, count: 4096, at: 0) == .success(Array(blob.bytes[..<4096])))
        mount.signal(SIGHUP)
        #expect(mount.waitForExit(timeout: 20) == 0, "exit status after SIGHUP\n\(mount.log.tail(2000))")
        #expect(MountTable.waitUntil(timeout: 5) { !MountTable.isMounted(workspace.mountpoint) }, "still mounted after SIGHUP")
        // Pages never read before: the kernel reads them from the data file, with no daemon.
        let late = Posix.pread(reader, count: 4096, at: Int64(blob.bytes.count - 4096))
        #expect(late == .success(Array(blob.bytes.suffix(4096))), "\(late)")
        #expect(close(reader) == 0, "close needs no daemon (noflush): \(Errno(errno))")
    }

    @Test func anODirectReaderReadsThroughTheKernelToo() throws {
        let workspace = try Workspace("pt-direct")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/direct", seededBytes(count: (4 << 20) + 8192, seed: 1320))])[0]
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--no-verify", "--passthrough", "auto"])
        defer { mount.stop() }
        let path = mount.path(blob.relativePath)
        let fd = Glibc.open(path, O_RDONLY | Posix.O_DIRECT | O_CLOEXEC)
        try #require(fd >= 0, "O_DIRECT open: \(Errno(errno))")
        close(fd)
        #expect(readAndCompare(path, expected: blob.bytes, chunk: 1 << 20, direct: true) == nil)
        #expect(mount.stop().isClean)
        let served = try #require(ServedCounts(mount.log))
        #expect(served.daemonReads == 0 && served.passthroughOpens == 2, "\(served)")
    }

    @Test func aDataFileLongerThanTheBlobIsServedByTheDaemon() throws {
        let workspace = try Workspace("pt-longer")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/longer", seededBytes(count: 200_000, seed: 1330))])[0]
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--no-verify", "--passthrough", "auto"])
        defer { mount.stop() }
        let path = mount.path(blob.relativePath)
        // The mount learns the blob's size, then the data file grows behind its back: the kernel
        // would read a passthrough file to its real end, past the blob.
        #expect(try Posix.stat(path).get().st_size == off_t(blob.bytes.count))
        let data = dataPath(root: workspace.root, blob.digest)
        let fd = Glibc.open(data, O_WRONLY | O_APPEND | O_CLOEXEC)
        try #require(fd >= 0)
        #expect(Glibc.write(fd, "trailing bytes", 14) == 14)
        close(fd)
        #expect(readAndCompare(path, expected: blob.bytes, chunk: 65_536) == nil)
        #expect(mount.stop().isClean)
        let served = try #require(ServedCounts(mount.log))
        #expect(served.daemonReads > 0 && served.passthroughOpens == 0 && served.backingOpened == 0, "\(served)")
    }

    @Test func aWriteOpenOnAReadWriteMountIsNeverPassthrough() throws {
        let workspace = try Workspace("pt-write")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/write", seededBytes(count: 100_000, seed: 1340))])[0]
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--read-write", "--no-verify", "--passthrough", "auto"])
        defer { mount.stop() }
        let path = mount.path(blob.relativePath)
        // Other bytes written over a blob: the daemon sees every write and refuses them at close.
        // Through passthrough the kernel would have written the data file itself.
        let fd = Glibc.open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        try #require(fd >= 0, "open for writing: \(Errno(errno))")
        let other = seededBytes(count: blob.bytes.count, seed: 1341)
        let wrote = other.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let closed = close(fd)
        #expect(wrote < 0 || closed != 0, "other bytes were accepted over a blob")
        let onDisk = try sha256sums([dataPath(root: workspace.root, blob.digest)])
        #expect(onDisk.values.first == blob.canonical.hex, "the data file changed: \(onDisk)")
        // A read-only open of it then is passthrough, and reads the blob.
        #expect(readAndCompare(path, expected: blob.bytes, chunk: 65_536) == nil)
        #expect(mount.stop().isClean)
        let served = try #require(ServedCounts(mount.log))
        #expect(served.daemonReads == 0 && served.passthroughOpens == 1, "\(served)")
    }

    /// The kernel refuses (EIO) a write open of an inode it reads through passthrough. An identical
    /// rewrite of a blob that a reader holds so waits for that reader's close, and one whose
    /// reader stays fails with EBUSY after the wait, the reader reading on unharmed.
    @Test func aWriteOpenOfABlobWaitsForItsPassthroughReadersToClose() throws {
        let workspace = try Workspace("pt-writer")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/writer", seededBytes(count: 300_000, seed: 1345))])[0]
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--read-write", "--passthrough", "auto"])
        defer { mount.stop() }
        let path = mount.path(blob.relativePath)
        let waitLine = "waits for its readers through passthrough"

        // A reader holds the blob; a writer of the same bytes starts, and waits.
        let reader = try Posix.open(path, O_RDONLY).get()
        let written = Mutex<WriteOutcome?>(nil)
        let writerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let outcome = writeThroughSyscalls(path, blob.bytes, flags: O_WRONLY | O_TRUNC)
            written.withLock { $0 = outcome }
            writerDone.signal()
        }
        #expect(MountTable.waitUntil(timeout: 30) { mount.log.contains(waitLine) }, "the writer did not wait:\n\(mount.log.tail(2000))")
        #expect(written.withLock { $0 } == nil, "the writer finished while the reader held the blob")
        #expect(readAndCompare(path, expected: blob.bytes, chunk: 65_536) == nil, "a second reader while the writer waits")
        close(reader)
        #expect(writerDone.wait(timeout: .now() + 30) == .success)
        let outcome = written.withLock { $0 }
        #expect(outcome?.succeeded == true, "the identical rewrite after the reader closed: \(String(describing: outcome))\n\(mount.log.tail(2000))")

        // A reader that stays: the writer's open fails with EBUSY once the wait is over.
        let staying = try Posix.open(path, O_RDONLY).get()
        defer { close(staying) }
        let refused = writeThroughSyscalls(path, blob.bytes, flags: O_WRONLY | O_TRUNC)
        #expect(refused.open == .EBUSY, "a write open while a reader stays: \(refused)")
        var bytes = [UInt8](repeating: 0, count: blob.bytes.count)
        let count = bytes.withUnsafeMutableBytes { pread(staying, $0.baseAddress, $0.count, 0) }
        #expect(count == blob.bytes.count && bytes == blob.bytes, "the staying reader after the refusal")
        #expect(try sha256sums([dataPath(root: workspace.root, blob.digest)]).values.first == blob.canonical.hex)
        #expect(mount.log.contains("fails with EBUSY"), "\(mount.log.tail(2000))")
    }

    @Test func passthroughOffServesEveryReadByTheDaemon() throws {
        let workspace = try Workspace("pt-off")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("pt/off", seededBytes(count: 2 << 20, seed: 1350))])[0]
        let mount = try BlobfsMount(
            root: workspace.root, mountpoint: workspace.mountpoint, options: ["--no-verify", "-o", "passthrough=off"])
        defer { mount.stop() }
        #expect(readAndCompare(mount.path(blob.relativePath), expected: blob.bytes, chunk: 1 << 20) == nil)
        #expect(try mappedBytes(mount.path(blob.relativePath)) == blob.bytes)
        #expect(mount.stop().isClean)
        #expect(mount.log.contains("passthrough: off (--passthrough off)"), "\(mount.log.tail(2000))")
        let served = try #require(ServedCounts(mount.log))
        #expect(served.daemonReads > 0 && served.passthroughOpens == 0 && served.backingOpened == 0, "\(served)")
    }

    // MARK: - Helpers

    /// Backing files the daemon opened and closed so far, from its debug lines.
    private func backingFiles(in log: String) -> (opened: Int, closed: Int) {
        let lines = log.split(separator: "\n")
        return (lines.count { $0.contains("backing file opened") }, lines.count { $0.contains("backing file closed") })
    }

    /// Waits (up to 20 s, polling the log) until `opened` backing files were all closed again:
    /// the kernel sends a release after close(2) returns, not before.
    private func waitForBackingFiles(of mount: BlobfsMount, opened: Int) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        var delay = 0.005
        while Date() < deadline {
            if backingFiles(in: mount.log) == (opened, opened) { return true }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.1)
        }
        return false
    }

    /// The whole file through mmap(2).
    private func mappedBytes(_ path: String) throws -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0, "open \(path): \(Errno(errno))")
        defer { close(fd) }
        let size = Int(try Posix.stat(path).get().st_size)
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw TestSupportError("mmap \(path): \(Errno(errno))")
        }
        defer { munmap(map, size) }
        return Array(UnsafeRawBufferPointer(start: map, count: size))
    }
}

/// Descriptors opened on several threads.
final class OpenDescriptors: Sendable {
    private let list = Mutex<[Int32]>([])

    func add(_ fd: Int32) { list.withLock { $0.append(fd) } }
    var all: [Int32] { list.withLock { $0 } }
}

/// The daemon's line at unmount: what it served, and how.
struct ServedCounts: CustomStringConvertible {
    var daemonReads = 0
    var passthroughOpens = 0
    var daemonOpens = 0
    var backingOpened = 0
    var backingClosed = 0

    init?(_ log: String) {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("served: ") }) else { return nil }
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        // "served: R reads …; P passthrough opens, D blob opens …; backing files opened O, closed C",
        // after the timestamp's numbers.
        guard numbers.count >= 5 else { return nil }
        let tail = numbers.suffix(5).map { $0 }
        (daemonReads, passthroughOpens, daemonOpens, backingOpened, backingClosed) = (tail[0], tail[1], tail[2], tail[3], tail[4])
    }

    var description: String {
        "\(daemonReads) daemon reads, \(passthroughOpens) passthrough opens, \(daemonOpens) daemon-served opens, "
            + "backing files opened \(backingOpened), closed \(backingClosed)"
    }
}

/// Whether this machine's kernel offers passthrough to this daemon: asked once, of a real mount.
enum PassthroughAvailability {
    static let reason: String? = probe()

    static var comment: Comment {
        Comment(rawValue: "skipped: passthrough is \(reason ?? "on")")
    }

    private static func probe() -> String? {
        do {
            let workspace = try Workspace("pt-probe")
            defer { workspace.remove() }
            try writeStore(root: workspace.root, [("pt/probe", [1, 2, 3])])
            let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--passthrough", "auto"])
            defer { mount.stop() }
            let deadline = Date().addingTimeInterval(20)
            var delay = 0.005
            while Date() < deadline {
                if let line = mount.log.split(separator: "\n").first(where: { $0.contains("passthrough: ") }) {
                    let status = line.components(separatedBy: "passthrough: ")[1]
                    return status.hasPrefix("on") ? nil : "off: \(status)"
                }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 0.1)
            }
            return "the startup line never came"
        } catch {
            return "the probe mount failed: \(error)"
        }
    }
}
