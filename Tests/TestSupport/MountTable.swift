import Foundation
import Glibc

/// One line of /proc/self/mountinfo.
public struct MountEntry: Sendable, Equatable, CustomStringConvertible {
    /// "major:minor" of the mounted filesystem (FUSE connections are "0:<n>").
    public var device: String
    public var mountpoint: String
    /// Per-mount options, like "ro,nosuid,nodev,relatime".
    public var mountOptions: [String]
    /// Like "fuse.blobfs".
    public var fileSystemType: String
    /// The mount's source, like the storage root blobfs puts in `fsname`.
    public var source: String
    /// Per-superblock options, like "rw,user_id=0,group_id=0,default_permissions".
    public var superOptions: [String]

    public var isReadOnly: Bool { mountOptions.contains("ro") }

    public var description: String {
        "\(source) on \(mountpoint) type \(fileSystemType) (\(mountOptions.joined(separator: ",")); \(superOptions.joined(separator: ",")))"
    }
}

/// Reads the mount table of this process's mount namespace.
public enum MountTable {
    /// Every mount, in mountinfo order (later lines are mounted on top of earlier ones).
    public static func entries() -> [MountEntry] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap(parse)
    }

    /// The topmost mount at `path` (compared after resolving symbolic links of the parent), if any.
    public static func entry(at path: String) -> MountEntry? {
        let wanted = normalized(path)
        return entries().last { $0.mountpoint == wanted }
    }

    /// Whether anything is mounted at `path`.
    public static func isMounted(_ path: String) -> Bool {
        entry(at: path) != nil
    }

    /// `path` with its parent resolved (the mountpoint itself may be unreachable while a dead FUSE
    /// mount sits on it, so it is not resolved itself).
    static func normalized(_ path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/"), slash != trimmed.startIndex else { return trimmed }
        let parent = String(trimmed[..<slash])
        let resolved = (try? Posix.realPath(parent)) ?? parent
        return resolved + trimmed[slash...]
    }

    /// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    static func parse(_ line: Substring) -> MountEntry? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 4 else { return nil }
        return MountEntry(
            device: fields[2],
            mountpoint: unescape(fields[4]),
            mountOptions: fields[5].split(separator: ",").map(String.init),
            fileSystemType: fields[dash + 1],
            source: unescape(fields[dash + 2]),
            superOptions: fields[dash + 3].split(separator: ",").map(String.init))
    }

    /// mountinfo writes space, tab, newline and backslash as \ooo octal escapes.
    static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 4 <= utf8.count,
                let value = UInt8(String(decoding: utf8[(index + 1)..<(index + 4)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits (short backoff, no fixed sleep) until `condition` holds or `timeout` seconds pass.
    /// Returns whether it held.
    public static func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var delay = 0.005
        while true {
            if condition() { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, 0.1)
        }
    }

    /// Removes whatever is mounted at `path`, lazily, however it got there: `fusermount3 -u -z`,
    /// then `umount -l`. Returns the steps that were needed (empty if nothing was mounted).
    @discardableResult
    public static func forceUnmount(_ path: String) -> [String] {
        var steps: [String] = []
        for (tool, arguments) in [("fusermount3", ["-u", "-z", path]), ("umount", ["-l", path])] {
            guard isMounted(path) else { break }
            let result = try? Command.run(tool, arguments, timeout: 15)
            steps.append("\(tool) \(arguments.joined(separator: " ")) -> \(result.map { "\($0.status) \($0.stderrText)" } ?? "did not run")")
        }
        if isMounted(path) { steps.append("STILL MOUNTED: \(entry(at: path).map(\.description) ?? path)") }
        return steps
    }
}
