import Glibc

/// Reads `/proc/self/mountinfo`.
public enum MountTable {
    /// The mount lines as (major:minor, mountpoint), mountpoints unescaped.
    static func mounts() -> [(device: String, mountpoint: String)] {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(file) }
        var result: [(String, String)] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let fields = String(cString: line!).split(separator: " ")
            guard fields.count > 4 else { continue }
            result.append((String(fields[2]), unescape(fields[4])))
        }
        return result
    }

    /// Whether `absolutePath` (symbolic links resolved) is a mountpoint now.
    public static func isMountpoint(_ absolutePath: String) -> Bool {
        mounts().contains { $0.mountpoint == absolutePath }
    }

    /// The device (major:minor) of the newest mount at `absolutePath`.
    static func device(of absolutePath: String) -> String? {
        mounts().last { $0.mountpoint == absolutePath }?.device
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo`.
    private static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let c = utf8.first {
            if c == UInt8(ascii: "\\"), utf8.count >= 4, let code = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(code)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(c)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
