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

/// The TCP sockets `pid` listens on, as `address:port` (`127.0.0.1:9440`, `[::1]:9440`), from
/// `ss`'s socket-diagnostics dump of listening sockets only. (Reading /proc/net/tcp in pieces
/// missed a listening socket when a loaded machine churned through thousands of connections
/// meanwhile: the kernel resumes that table by position between reads.)
func listeningSockets(of pid: Int32) throws -> [String] {
    let listing = try Command.run("ss", ["-H", "-l", "-t", "-n", "-p"], timeout: 30)
    guard listing.status == 0 else { throw TestSupportError("ss -Hltnp: \(listing)") }
    // State Recv-Q Send-Q Local:Port Peer:Port users:(("blobfs",pid=123,fd=7))
    return listing.stdoutText.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, line.contains("pid=\(pid),") else { return nil }
        return String(fields[3])
    }
}
