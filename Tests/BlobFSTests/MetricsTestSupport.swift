import Foundation
import Glibc
import Testing
import TestSupport

/// One scrape of `GET /metrics`: every sample by its family name and labels.
struct Scrape: Sendable {
    let text: String
    private let samples: [String: Double]

    /// Scrapes `url` with curl; throws if the answer is not 200.
    init(_ url: String) throws {
        let result = try Command.run("/usr/bin/curl", ["-s", "-S", "-g", "--noproxy", "*", "--max-time", "20", "-w", "\n%{http_code}", url], timeout: 30)
        guard result.status == 0 else { throw TestSupportError("curl \(url): \(result)") }
        var body = result.stdoutText
        let status = body[body.index(after: body.lastIndex(of: "\n")!)...]
        guard status == "200" else { throw TestSupportError("GET \(url) answered \(status): \(body)") }
        body.removeSubrange(body.lastIndex(of: "\n")!...)
        text = body
        var samples: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw TestSupportError("not a sample line: \(line)")
            }
            samples[Self.key(line[..<space])] = value
        }
        self.samples = samples
    }

    /// A sample's value; 0 for a series not exposed (yet): a counter made at its first use.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples[Self.key(name, labels)] ?? 0
    }

    /// Whether the series is exposed at all.
    func has(_ name: String, _ labels: [String: String] = [:]) -> Bool { samples[Self.key(name, labels)] != nil }

    /// `name{a="1",b="2"}` with its labels sorted, whatever order they were written in.
    private static func key(_ series: Substring) -> String {
        guard let brace = series.firstIndex(of: "{") else { return String(series) }
        var labels: [String: String] = [:]
        for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
        }
        return key(String(series[..<brace]), labels)
    }

    private static func key(_ name: String, _ labels: [String: String]) -> String {
        labels.isEmpty ? name : name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }
}

/// What moved between two scrapes.
struct ScrapeDelta {
    let before: Scrape
    let after: Scrape

    subscript(_ name: String, _ labels: [String: String] = [:]) -> Double {
        after.value(name, labels) - before.value(name, labels)
    }
}

/// The TCP sockets `pid` listens on, as `address:port` from /proc/net/tcp and tcp6 (hex decoded).
func listeningSockets(of pid: Int32) throws -> [String] {
    // The socket inodes the process holds.
    var inodes = Set<String>()
    for fd in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
            target.hasPrefix("socket:[")
        {
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
    }
    var listening: [String] = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let lines = try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n").dropFirst()
        for line in lines {
            let fields = line.split(separator: " ")
            // sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
            guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
            listening.append(decodeProcAddress(String(fields[1])))
        }
    }
    return listening
}

/// `0100007F:24E0` → `127.0.0.1:9440`; an IPv6 address is shown in hex words, in brackets.
private func decodeProcAddress(_ field: String) -> String {
    let parts = field.split(separator: ":")
    let port = Int(parts[1], radix: 16)!
    let hex = Array(parts[0])
    if hex.count == 8 {
        let bytes = stride(from: 0, to: 8, by: 2).map { Int(String(hex[$0..<$0 + 2]), radix: 16)! }
        return "\(bytes[3]).\(bytes[2]).\(bytes[1]).\(bytes[0]):\(port)"
    }
    return "[\(String(hex))]:\(port)"
}
