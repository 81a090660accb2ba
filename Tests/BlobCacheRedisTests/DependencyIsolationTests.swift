import Foundation
import Testing
import TestSupport

/// Only the Redis target (and what is built on it to offer Redis: the executable, and the tests
/// of both) may depend on hiredis, so the storage core and the filesystem build and run without it.
@Suite struct DependencyIsolationTests {
    @Test func onlyTheRedisTargetReachesHiredis() throws {
        let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        // Its own scratch path: the package's .build is locked by the `swift test` running us.
        let scratch = try TemporaryDirectory(prefix: "blobfs-dump-package")
        defer { scratch.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "package", "--package-path", packageDirectory, "--scratch-path", scratch.path, "dump-package"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let package = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let targets = try #require(package["targets"] as? [[String: Any]])
        var dependencies: [String: [String]] = [:]
        for target in targets {
            let name = target["name"] as! String
            let entries = target["dependencies"] as? [[String: Any]] ?? []
            dependencies[name] = entries.compactMap { entry in
                ((entry["byName"] ?? entry["target"]) as? [Any])?.first as? String
            }
        }
        func reaches(_ target: String, _ goal: String, _ seen: inout Set<String>) -> Bool {
            guard seen.insert(target).inserted else { return false }
            return (dependencies[target] ?? []).contains { $0 == goal || reaches($0, goal, &seen) }
        }
        let reaching = dependencies.keys.filter { target in
            var seen = Set<String>()
            return reaches(target, "CHiredis", &seen)
        }.sorted()
        #expect(Set(reaching).isSubset(of: ["BlobCacheRedis", "BlobCacheRedisTests", "blobfs", "BlobFSTests"]), "targets reaching hiredis: \(reaching)")
        #expect(reaching.contains("BlobCacheRedis"))
        for core in ["Distribution", "StorageDriver", "Storage", "BlobCache", "BlobFS"] {
            var seen = Set<String>()
            #expect(!reaches(core, "CHiredis", &seen), "\(core) must build without hiredis")
        }
    }
}
