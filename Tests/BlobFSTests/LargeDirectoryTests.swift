import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// Listings that take many READDIR/READDIRPLUS round trips (the kernel asks in 4 KiB pages):
/// every entry exactly once, with the right attributes.
@Suite struct LargeDirectoryTests {
    @Test func aRepositoryWithThousandsOfBlobsListsEachExactlyOnce() throws {
        let workspace = try Workspace("large-dir")
        defer { workspace.remove() }
        var contents: [(repository: String, bytes: [UInt8])] = []
        for index in 0..<2500 {
            contents.append(("many/blobs", seededBytes(count: 16 + index % 7, seed: 800 + UInt64(index))))
        }
        // And many repositories side by side under one component.
        for index in 0..<300 {
            contents.append(("many/repos/r\(index)", seededBytes(count: 8, seed: 5000 + UInt64(index))))
        }
        let blobs = try writeStore(root: workspace.root, contents)
        let inMany = blobs.filter { $0.repository == "many/blobs" }
        let expectedNames = Set(inMany.map(\.digest.description))

        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let directory = mount.path("repo/many/@blobs/blobs")
            // readdir (ls -f: no sort, no stat), then readdirplus with attributes (ls -l).
            let plain = try Command.run("ls", ["-f", "-1", directory])
            let plainNames = plain.stdoutText.split(separator: "\n").map(String.init).filter { $0 != "." && $0 != ".." }
            #expect(plain.status == 0 && plainNames.count == inMany.count && Set(plainNames) == expectedNames,
                "ls -f: \(plainNames.count) names (\(Set(plainNames).count) distinct), expected \(inMany.count)")
            let long = try Command.run("ls", ["-l", "--time-style=+", directory])
            let rows = long.stdoutText.split(separator: "\n").filter { $0.hasPrefix("-") }
            #expect(long.status == 0 && rows.count == inMany.count, "ls -l: \(rows.count) rows, expected \(inMany.count)")
            let sizes = Dictionary(uniqueKeysWithValues: inMany.map { ($0.digest.description, $0.bytes.count) })
            let wrong = rows.filter { row in
                let fields = row.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 6, let name = fields.last, let size = Int(fields[4]) else { return true }
                return !row.hasPrefix("-r--r--r--") || sizes[String(name)] != size
            }
            #expect(wrong.isEmpty, "ls -l rows with a wrong mode or size: \(wrong.prefix(3))")
            let repositories = try FileManager.default.contentsOfDirectory(atPath: mount.path("repo/many/repos"))
            #expect(Set(repositories) == Set((0..<300).map { "r\($0)" }), "\(repositories.count) repositories listed")
            // Every file reads right (one sha256sum run over all of them).
            try expectTree(mount.path("repo/many/repos"), holds: blobs.filter { $0.repository.hasPrefix("many/repos/") }, stripping: "repo/many/repos/", "many repositories")
        }
    }
}
