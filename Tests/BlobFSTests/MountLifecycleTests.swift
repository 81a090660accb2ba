import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// Starting and ending mounts: SIGTERM under load, the mount(8) helper form, bad arguments.
@Suite struct MountLifecycleTests {
    /// SIGTERM the moment the mount appears: the stop handlers are on before the mount is, so the
    /// daemon still unmounts and exits 0 (a full run once saw it killed by a SIGTERM that came
    /// before the handlers, which were installed only when the loop started).
    @Test func sigtermRightAfterTheMountAppearsIsACleanStop() throws {
        let workspace = try Workspace("sigterm-early")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("early/app", seededBytes(count: 100, seed: 890))])
        for round in 0..<10 {
            let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint)
            let stopped = mount.stop()
            #expect(stopped.isClean, "round \(round): \(stopped)")
        }
    }

    @Test func sigtermWhileReadersAreActiveExitsZeroAndRemovesTheMount() throws {
        let workspace = try Workspace("sigterm")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("big/blob", seededBytes(count: 32 << 20, seed: 400))])[0]
        let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint)
        defer { mount.stop() }
        let path = mount.path(blob.relativePath)

        // A reader thread that has read the first MiB and holds the file open, mid-way.
        let ready = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let problems = Problems()
        let notes = Problems()
        let expected = blob.bytes
        Thread {
            defer { done.signal() }
            guard case .success(let fd) = Posix.open(path, O_RDONLY) else {
                problems.add("open failed: \(Posix.open(path, O_RDONLY))")
                ready.signal()
                return
            }
            defer { close(fd) }
            let first = Posix.pread(fd, count: 1 << 20, at: 0)
            if first != .success(Array(expected[..<(1 << 20)])) { problems.add("first MiB wrong or failed: \(first.errno.map(\.description) ?? "wrong bytes")") }
            ready.signal()
            resume.wait()
            // After the daemon is gone: every byte that still comes back must be right.
            var offset = 1 << 20
            while offset < expected.count {
                switch Posix.pread(fd, count: 1 << 20, at: Int64(offset)) {
                case .success(let bytes):
                    if bytes.isEmpty {
                        problems.add("short read: end of file at \(offset) of \(expected.count)")
                        return
                    }
                    if bytes != Array(expected[offset..<(offset + bytes.count)]) {
                        problems.add("wrong bytes at \(offset) after SIGTERM")
                        return
                    }
                    offset += bytes.count
                case .failure(let error):
                    notes.add("read at \(offset) after SIGTERM: \(error)")
                    return
                }
            }
        }.start()
        #expect(ready.wait(timeout: .now() + 30) == .success, "the reader never got its first MiB\n\(mount.log.tail(2000))")

        // And a process reading with O_DIRECT, 4 KiB at a time: every request goes to the daemon.
        let dd = try Command.start("dd", ["if=\(path)", "of=/dev/null", "bs=4096", "iflag=direct"])
        _ = MountTable.waitUntil(timeout: 10) {
            !dd.isRunning || ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(dd.pid)/fd")) ?? []).contains {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(dd.pid)/fd/\($0)")) == path
            }
        }

        let stopped = mount.stop()
        #expect(stopped.status == 0 && stopped.exitedInTime, "blobfs after SIGTERM with active readers: \(stopped)\n\(mount.log.tail(3000))")
        #expect(stopped.mountGoneAtExit, "the mount outlived the daemon: \(stopped)")
        #expect(!MountTable.isMounted(workspace.mountpoint))

        resume.signal()
        #expect(done.wait(timeout: .now() + 30) == .success, "the reader thread is stuck after the daemon exited")
        let ddResult = try dd.wait(timeout: 30)  // throws if dd hangs
        #expect(problems.all.isEmpty, "\(problems.all) (\(notes.all); dd: \(ddResult.status) \(ddResult.stderrText))")
    }

    @Test func mountDashTFuseBlobfsMountsReadOnlyAndUmountEndsTheDaemon() throws {
        let workspace = try Workspace("mount-t")
        defer { workspace.remove() }
        let blobs = try writeStore(root: workspace.root, [
            ("library/busybox", seededBytes(count: 300_000, seed: 500)),
            ("team/app", seededBytes(count: 7, seed: 501)),
        ])
        let mountpoint = try Posix.realPath(workspace.mountpoint)
        var daemons: [Int32] = []
        defer {
            // Whatever failed: no mount and no daemon left behind (only the ones this test started,
            // found by its unique mountpoint).
            if MountTable.isMounted(mountpoint) { MountTable.forceUnmount(mountpoint) }
            for pid in Set(daemons + ProcessTable.blobfsProcesses(withArgument: mountpoint)) where ProcessTable.isAlive(pid) {
                kill(pid, SIGKILL)
            }
        }

        // mount(8) drops PATH before running mount.fuse: see HelperPath.
        try HelperPath.withBlobfsInstalled {
            let mounted = try Command.run("mount", ["-t", "fuse.blobfs", workspace.root, mountpoint, "-o", "ro"], timeout: 30)
            #expect(mounted.status == 0, "\(mounted)")
            #expect(MountTable.isMounted(mountpoint), "mount returned before the filesystem was mounted")
            guard MountTable.waitUntil(timeout: 10, { MountTable.isMounted(mountpoint) }), let entry = MountTable.entry(at: mountpoint) else {
                Issue.record("no mount at \(mountpoint) after `mount -t fuse.blobfs`: \(mounted)")
                return
            }
            daemons = ProcessTable.blobfsProcesses(withArgument: mountpoint)
            #expect(entry.fileSystemType == "fuse.blobfs" && entry.isReadOnly, "\(entry)")
            #expect(daemons.count == 1, "blobfs daemons for \(mountpoint): \(daemons)")

            for blob in blobs {
                #expect(try sha256Hex(ofFile: mountpoint + "/" + blob.relativePath) == blob.canonical.hex, "\(blob)")
            }
            let create = syscallOutcome(closingDescriptor: true) {
                Int(Glibc.open(mountpoint + "/repo/team/app/blobs/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644))
            }
            #expect(create == .failed(.EROFS))

            let unmounted = try Command.run("umount", [mountpoint], timeout: 30)
            #expect(unmounted.status == 0, "\(unmounted)")
            #expect(MountTable.waitUntil(timeout: 10) { !MountTable.isMounted(mountpoint) }, "still mounted after umount")
            #expect(MountTable.waitUntil(timeout: 10) { daemons.allSatisfy { !ProcessTable.isAlive($0) } }, "blobfs \(daemons) still running after umount")
        }
    }

    @Test func anExternalUmountOrSIGINTEndsTheForegroundDaemonWithStatusZero() throws {
        let workspace = try Workspace("umount")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("a/b", seededBytes(count: 100_000, seed: 650))])[0]
        for way in ["umount", "fusermount3 -u", "SIGINT"] {
            let mount = try BlobfsMount(root: workspace.root, mountpoint: workspace.mountpoint)
            defer { mount.stop() }
            #expect(try sha256Hex(ofFile: mount.path(blob.relativePath)) == blob.canonical.hex)
            switch way {
            case "umount":
                let result = try Command.run("umount", [mount.mountpoint], timeout: 30)
                #expect(result.status == 0, "\(result)")
            case "fusermount3 -u":
                let result = try Command.run("fusermount3", ["-u", mount.mountpoint], timeout: 30)
                #expect(result.status == 0, "\(result)")
            default:
                mount.signal(SIGINT)
            }
            let status = mount.waitForExit(timeout: 20)
            #expect(status == 0, "blobfs after \(way): \(status.map { "exit status \($0)" } ?? "still running after 20 s")\n\(mount.log.tail(2000))")
            #expect(!MountTable.isMounted(workspace.mountpoint), "still mounted after \(way)")
        }
    }

    @Test func mountRefusesAMissingStoreANonStoreOrABadMountpointWithOneLine() throws {
        let workspace = try Workspace("bad-args")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("a/b", seededBytes(count: 10, seed: 600))])
        let blobfs = try BlobfsExecutable.path()
        let missingRoot = workspace.path("no-such-store")
        let notAStore = try workspace.makeDirectory("not-a-store")
        try Posix.writeFile(notAStore + "/notes.txt", Array("not a registry\n".utf8))
        let missingMountpoint = workspace.path("no-such-mountpoint")
        let busyMountpoint = try workspace.makeDirectory("busy")
        defer {
            for mountpoint in [workspace.mountpoint, missingMountpoint] where MountTable.isMounted(mountpoint) {
                MountTable.forceUnmount(mountpoint)
            }
        }
        // A mountpoint that is already mounted (by blobfs itself) is busy.
        try BlobfsMount.withMount(root: workspace.root, mountpoint: busyMountpoint) { busy in
            let cases: [(arguments: [String], mentions: String)] = [
                (["mount", missingRoot, workspace.mountpoint], missingRoot),
                (["mount", notAStore, workspace.mountpoint], notAStore),
                (["mount", workspace.root, missingMountpoint], missingMountpoint),
                (["mount", workspace.root, busy.mountpoint], busy.mountpoint),
                (["verify", missingRoot], missingRoot),
                (["verify", notAStore], notAStore),
            ]
            for (arguments, mentions) in cases {
                let result = try Command.run(blobfs, arguments, timeout: 20)
                let lines = result.stderrText.split(separator: "\n", omittingEmptySubsequences: true)
                #expect(result.status != 0, "\(result)")
                #expect(lines.count == 1 && result.stderrText.contains(mentions), "one clear line naming \(mentions): \(result)")
                #expect(!MountTable.isMounted(workspace.mountpoint) && !MountTable.isMounted(missingMountpoint))
            }
            // The busy mount is untouched.
            #expect(MountTable.entry(at: busy.mountpoint) == busy.entry)
            #expect(FileManager.default.fileExists(atPath: busy.path("repo/a/b/blobs")))
        }
    }

    /// A daemon started under a low soft open-file limit raises it to the hard one: the driver
    /// holds up to 256 directories, besides every open blob and backing file.
    @Test func theDaemonRaisesItsOpenFileLimitToTheHardLimit() throws {
        let workspace = try Workspace("nofile")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("nofile/app", seededBytes(count: 10, seed: 610))])
        var hard = rlimit()
        try #require(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &hard) == 0)
        try #require(hard.rlim_max > 512, "the hard limit here is \(hard.rlim_max)")
        let log = workspace.path("nofile.log")
        let daemon = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "ulimit -Sn 512 && exec \"$0\" mount \"$1\" \"$2\"", try BlobfsExecutable.path(), workspace.root, workspace.mountpoint],
            stdoutPath: log, stderrPath: log)
        defer {
            if MountTable.isMounted(workspace.mountpoint) { MountTable.forceUnmount(workspace.mountpoint) }
            daemon.signal(SIGKILL)
            _ = daemon.wait(timeout: 10)
        }
        #expect(MountTable.waitUntil(timeout: 30) { MountTable.isMounted(workspace.mountpoint) }, "not mounted: \((try? Posix.readFile(log)).map { String(decoding: $0, as: UTF8.self) } ?? "")")
        let limits = String(decoding: try Posix.readFile("/proc/\(daemon.pid)/limits"), as: UTF8.self)
        let line = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }.map(String.init) ?? ""
        let numbers = line.split(separator: " ").compactMap { UInt64($0) }
        #expect(numbers.count == 2 && numbers[0] == numbers[1] && numbers[0] == UInt64(hard.rlim_max), "\(line)")
        let result = try Command.run("fusermount3", ["-u", workspace.mountpoint], timeout: 30)
        #expect(result.status == 0, "\(result)")
        #expect(daemon.wait(timeout: 20) != nil)
    }
}
