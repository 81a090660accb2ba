import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

@testable import blobfs

/// What `blobfs mount` refuses before mounting, each with one line naming the file and the reason
/// (docs/hostile-input.md, F10, F11, F15): nothing is mounted, nothing is read without bound.
@Suite struct RefusedInputTests {
    /// Runs `blobfs mount <store> <mnt> …` that must fail before mounting.
    func refusedMount(_ workspace: Workspace, _ extra: [String], root: [String]? = nil) throws -> CommandResult {
        let result = try Command.run(
            try BlobfsExecutable.path(), ["mount"] + (root ?? [workspace.root]) + [workspace.mountpoint] + extra, timeout: 30)
        if MountTable.isMounted(workspace.mountpoint) {
            MountTable.forceUnmount(workspace.mountpoint)
            Issue.record("mounted although it should have been refused: \(result)")
        }
        return result
    }

    func expectOneLine(_ result: CommandResult, status: Int32 = 1, mentioning texts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = result.stderrText.split(separator: "\n")
        #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
        #expect(lines.count == 1 && texts.allSatisfy(result.stderrText.contains), "one line with \(texts): \(result)", sourceLocation: sourceLocation)
    }

    @Test func badRedisPasswordFilesAreRefused() throws {
        let workspace = try Workspace("password")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("a/b", seededBytes(count: 10, seed: 90))])
        func secret(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws -> String {
            let path = workspace.path(name)
            try Posix.writeFile(path, bytes)
            #expect(chmod(path, mode) == 0)
            return path
        }
        let good = try secret("good", Array("s3cret\nignored\n".utf8))
        let readable = try secret("readable", Array("s3cret\n".utf8), mode: 0o644)
        let groupWritable = try secret("group-writable", Array("s3cret\n".utf8), mode: 0o620)
        let linked = workspace.path("linked")
        #expect(symlink(good, linked) == 0)
        let foreign = try secret("foreign", Array("s3cret\n".utf8))
        #expect(chown(foreign, 65534, 65534) == 0)
        let empty = try secret("empty", [])
        let blankLine = try secret("blank-line", Array("\nsecond line\n".utf8))
        let large = try secret("large", Array(repeating: UInt8(ascii: "x"), count: 5000))
        let fifo = workspace.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)

        let redis = ["--redis", "127.0.0.1:1"]  // never reached: the file is refused first
        for (file, reason) in [
            (readable, "others can read it (mode 644"), (groupWritable, "others can write it (mode 620"),
            (linked, "it is a symbolic link"), (foreign, "belongs to uid 65534"), ("/dev/zero", "not a regular file"),
            (fifo, "not a regular file"), (empty, "no password"), (blankLine, "no password"), (large, "5000 bytes"),
        ] {
            let result = try refusedMount(workspace, redis + ["--redis-password-file", file])
            expectOneLine(result, mentioning: ["refusing the Redis password file \(file): ", reason])
        }
        // Without any Redis the option would be ignored: a usage error instead.
        let alone = try refusedMount(workspace, ["--redis-password-file", good])
        expectOneLine(alone, status: 2, mentioning: ["--redis-password-file needs a Redis cache"])

        #expect(try RedisPasswordFile.read(good) == "s3cret", "the first line, as before")
    }

    @Test func aLogFileThatIsASymbolicLinkIsRefused() throws {
        let workspace = try Workspace("log-link")
        defer { workspace.remove() }
        try writeStore(root: workspace.root, [("a/b", seededBytes(count: 10, seed: 91))])
        let target = workspace.path("target")
        try Posix.writeFile(target, [])
        let link = workspace.path("blobfs.log")
        #expect(symlink(target, link) == 0)
        let result = try refusedMount(workspace, ["-o", "log=\(link)"])
        expectOneLine(result, mentioning: ["refusing the log file \(link): it is a symbolic link"])
        #expect(try Posix.readFile(target).isEmpty, "nothing appended to the link's target")
    }

    /// F11: a configuration without rootdirectory names the registry's default, and if that is no
    /// store the error says both.
    @Test func aConfigurationWithoutRootDirectorySaysTheDefaultIsUsed() throws {
        let workspace = try Workspace("default-root")
        defer { workspace.remove() }
        let config = workspace.path("config.yml")
        try Posix.writeFile(config, Array("storage: {filesystem: {}}\n".utf8))
        let result = try refusedMount(workspace, ["--config", config], root: [])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderrText.contains("\(config) sets no storage.filesystem.rootdirectory: /var/lib/registry is the registry's default"), "\(result)")
        if !FileManager.default.fileExists(atPath: "/var/lib/registry") {
            #expect(result.stderrText.contains("storage root /var/lib/registry does not exist ("), "both in one line: \(result)")
        }

        try Posix.writeFile(config, Array("storage: {filesystem: {rootdirectory: \(workspace.root)}}\nredis: {addr: x, db: \"3\"}\n".utf8))
        let quoted = try refusedMount(workspace, ["--config", config], root: [])
        expectOneLine(quoted, mentioning: ["\(config): redis.db \"3\" is not an integer from 0 to 2147483647"])
    }

    /// F15: blobfs reads only docker/registry/v2, so a mountpoint beside docker/ in the storage
    /// root is accepted (README says so); one inside docker/ is still refused.
    @Test func aMountpointInsideTheStoreRootButOutsideDockerIsAccepted() throws {
        let workspace = try Workspace("inside-root")
        defer { workspace.remove() }
        let blob = try writeStore(root: workspace.root, [("a/b", seededBytes(count: 1000, seed: 92))])[0]
        let inside = workspace.root + "/mnt_inside"
        try Posix.makeDirectory(inside)
        defer { if MountTable.isMounted(inside) { MountTable.forceUnmount(inside) } }
        try BlobfsMount.withMount(root: workspace.root, mountpoint: inside) { mount in
            let sum = try sha256Hex(ofFile: mount.path(blob.relativePath))
            #expect(sum == blob.canonical.hex)
        }
        let inDocker = workspace.root + "/docker/mnt"
        try Posix.makeDirectory(inDocker)
        let refused = try Command.run(try BlobfsExecutable.path(), ["mount", workspace.root, inDocker], timeout: 30)
        if MountTable.isMounted(inDocker) { MountTable.forceUnmount(inDocker) }
        #expect(refused.status == 1 && refused.stderrText.contains("is inside the store"), "\(refused)")
    }
}
