/// One HTTP answer as curl received it: the status is data, not an error.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names are lowercased; repeated headers are joined with ", ".
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of a header, looked up case-insensitively.
    public func header(_ name: String) -> String? {
        headers[name.lowercased()]
    }

    /// The body decoded as UTF-8 (lossy), for error messages and JSON checks.
    public var text: String {
        String(decoding: body, as: UTF8.self)
    }
}

/// Parses the file written by `curl -D`: only the last header block counts (a `100 Continue` may come first).
func parseHeaderDump(_ dump: String) throws -> (status: Int, headers: [String: String]) {
    // Split on bytes: as Characters, "\r\n" is one grapheme and would never equal "\n".
    let lines = dump.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
        Substring(line.last == UInt8(ascii: "\r") ? line.dropLast() : line)
    }
    guard let statusIndex = lines.lastIndex(where: { $0.hasPrefix("HTTP/") }) else {
        throw TestSupportError("no HTTP status line in curl's header dump: \(dump)")
    }
    let statusParts = lines[statusIndex].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
        throw TestSupportError("malformed status line: \(lines[statusIndex])")
    }
    var headers: [String: String] = [:]
    for line in lines[(statusIndex + 1)...] {
        if line.isEmpty { break }
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon].trimmingSpaces().lowercased()
        let value = String(line[line.index(after: colon)...].trimmingSpaces())
        if let previous = headers[name] {
            headers[name] = previous + ", " + value
        } else {
            headers[name] = value
        }
    }
    return (status, headers)
}

extension Substring {
    /// Drops leading and trailing spaces and tabs (header whitespace), without Foundation.
    fileprivate func trimmingSpaces() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[start...end]
    }
}
