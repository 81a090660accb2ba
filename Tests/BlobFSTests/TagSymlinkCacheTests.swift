import Distribution
import Foundation
import Glibc
import Storage
import StorageDriver
import Testing
import TestSupport

/// Tags through a real mount, with the kernel keeping symbolic links' targets in their page cache
/// (FUSE_CAP_CACHE_SYMLINKS): a tag moved behind the mount is followed within the tags' timeout,
/// never answered from the target the kernel cached for the tag's old manifest, and `ls -l` of a
/// large `tags/` shows every tag's own target, the first time and from the cache.
@Suite(.serialized) struct TagSymlinkCacheTests {
    /// A repository `app` holding `count` manifest revisions, through Storage.
    static func manifests(_ count: Int, root: String) throws -> (Repository, [Digest]) {
        let repository = try Registry(driver: try FilesystemDriver(root: root)).repository("app")
        let config = try repository.blobs.put(mediaType: "application/vnd.oci.image.config.v1+json", Array("{}".utf8)).digest
        let digests = try (0..<count).map { n in
            let bytes = Array(("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
                + "\"application/vnd.oci.image.config.v1+json\",\"size\":2,\"digest\":\"\(config)\"},\"layers\":[],"
                + "\"annotations\":{\"n\":\"\(n)\"}}").utf8)
            return try repository.manifests.put(bytes, as: Digester.digest(of: bytes)).digest
        }
        return (repository, digests)
    }

    @Test func aTagMovedBehindTheMountIsFollowedAtOnceWithNoDirectoryTimeout() throws {
        let workspace = try Workspace("tag-move-now")
        defer { workspace.remove() }
        let (repository, digests) = try Self.manifests(2, root: workspace.root)
        try repository.tags.tag(try Tag("v1"), to: digests[0])
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--dir-timeout", "0"]) { mount in
            let link = mount.path("repo/app/tags/v1")
            // Read twice: the second is the kernel's cached target.
            for _ in 0..<2 { #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../manifests/\(digests[0])") }
            try repository.tags.tag(try Tag("v1"), to: digests[1])
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../manifests/\(digests[1])",
                "the target cached for the old manifest was served\n\(mount.log.tail(2000))")
            // And back: the first manifest's target again, not the second's cached one.
            try repository.tags.tag(try Tag("v1"), to: digests[0])
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../manifests/\(digests[0])")
        }
    }

    @Test func aTagMovedBehindTheMountIsFollowedWithinTheTimeout() throws {
        let workspace = try Workspace("tag-move-timeout")
        defer { workspace.remove() }
        let (repository, digests) = try Self.manifests(2, root: workspace.root)
        try repository.tags.tag(try Tag("v1"), to: digests[0])
        let timeout = 1.0
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["--dir-timeout", "\(timeout)"]) { mount in
            let link = mount.path("repo/app/tags/v1")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../manifests/\(digests[0])")
            try repository.tags.tag(try Tag("v1"), to: digests[1])
            let moved = Date()
            // The kernel may answer the old target until its entry for the name times out; the
            // wait is for that timeout, which nothing else signals. Beyond it (and some slack for
            // a loaded machine) the new target must show.
            var seen = try FileManager.default.destinationOfSymbolicLink(atPath: link)
            while seen != "../manifests/\(digests[1])" && Date().timeIntervalSince(moved) < timeout + 2 {
                #expect(seen == "../manifests/\(digests[0])", "neither the old nor the new target")
                usleep(20_000)
                seen = try FileManager.default.destinationOfSymbolicLink(atPath: link)
            }
            #expect(seen == "../manifests/\(digests[1])", "the moved tag still reads \(seen) after \(Date().timeIntervalSince(moved)) s")
            // From now on the new target, also from the kernel's cache.
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../manifests/\(digests[1])")
        }
    }

    @Test func lsShowsEachOfAThousandTagsWithItsOwnTarget() throws {
        let workspace = try Workspace("tag-ls")
        defer { workspace.remove() }
        let (_, digests) = try Self.manifests(10, root: workspace.root)
        // 1,000 tags written as the registry lays them out (without its fsyncs, for speed).
        let tagsRoot = workspace.root + "/docker/registry/v2/repositories/app/_manifests/tags"
        var expected: [String: String] = [:]
        for n in 0..<1000 {
            let tag = String(format: "t%04d", n)
            let digest = digests[(n * 7) % digests.count]
            try FileManager.default.createDirectory(atPath: "\(tagsRoot)/\(tag)/current", withIntermediateDirectories: true)
            try Posix.writeFile("\(tagsRoot)/\(tag)/current/link", Array(digest.description.utf8))
            expected[tag] = "../manifests/\(digest)"
        }
        // libfuse's debug log names every request the kernel sends.
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: ["-o", "debug"]) { mount in
            func readlinks() -> Int { mount.log.components(separatedBy: "opcode: READLINK").count - 1 }
            // The first listing reads every link from the daemon, the second from the kernel's cache.
            var sent: [Int] = []
            for round in 1...2 {
                let ls = try Command.run("ls", ["-l", mount.path("repo/app/tags")], timeout: 60)
                #expect(ls.status == 0, "round \(round): \(ls)")
                var shown: [String: String] = [:]
                for line in ls.stdoutText.split(separator: "\n") where line.hasPrefix("l") {
                    let words = line.split(separator: " ")
                    guard words.count >= 3, words[words.count - 2] == "->" else { continue }
                    shown[String(words[words.count - 3])] = String(words[words.count - 1])
                }
                #expect(shown.count == 1000 && shown == expected, "round \(round): \(shown.count) tags shown")
                sent.append(readlinks())
            }
            // The second listing is served from the kernel's page cache of the targets. A page
            // the kernel reclaimed meanwhile is asked for again (seen once on a loaded machine:
            // [1000, 1001]); without the cache it would be another thousand.
            #expect(sent[0] == 1000 && sent[1] - sent[0] <= 10, "READLINK requests after each listing: \(sent)")
        }
    }
}
