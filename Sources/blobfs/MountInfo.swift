/// The mount points of this process's mount namespace, from `/proc/self/mountinfo`.
enum MountInfo {
    /// Every mount point, with the kernel's octal escapes (`\040` for a space) decoded.
    static func mountPoints() throws(FileReadError) -> [String] {
        try readTextFile("/proc/self/mountinfo").split(separator: "\n").compactMap { line in
            // Fields: id, parent id, major:minor, root, mount point, …
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
            return fields.count > 4 ? unescape(fields[4]) : nil
        }
    }

    /// Whether `path` (absolute, symbolic links resolved) is a mount point.
    static func isMountPoint(_ path: String) throws(FileReadError) -> Bool {
        try mountPoints().contains(path)
    }

    /// Decodes `\ooo` octal escapes.
    static func unescape(_ field: Substring) -> String {
        let bytes = Array(field.utf8)
        var result: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), let value = octal(bytes[(i + 1)..<min(i + 4, bytes.count)]) {
                result.append(value)
                i += 4
            } else {
                result.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    private static func octal(_ digits: ArraySlice<UInt8>) -> UInt8? {
        guard digits.count == 3 else { return nil }
        var value = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + Int(d - UInt8(ascii: "0"))
        }
        return value <= 255 ? UInt8(value) : nil
    }
}
