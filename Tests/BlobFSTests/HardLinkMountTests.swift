import Distribution
import Glibc
import Testing
import TestSupport

@testable import blobfs

/// Shared blobs as hard links, on by default (issue 12): every name of a blob that several
/// repositories link reports one `st_ino` and `st_nlink` its number of names, through a real
/// mount of a store; `--no-hard-links` (`-o no_hard_links`) shows each name as a file of its own.
@Suite struct HardLinkMountTests {
    static let sharing = ["a", "b", "team/c", "team/d/e", "f", "g", "h"]

    /// A layer linked in every repository of `sharing`, a second one in two of them, and a blob
    /// of `a`'s own, written through the storage layer.
    static func writeSharedStore(root: String) throws -> (layer: Digest, pair: Digest, own: Digest) {
        let layer = seededBytes(count: 100_000, seed: 2_612)
        let pair = seededBytes(count: 3_000, seed: 2_613)
        let own = seededBytes(count: 5_000, seed: 2_614)
        let blobs = sharing.map { ($0, layer) } + [("b", pair), ("team/c", pair), ("a", own)]
        try writeStore(root: root, blobs)
        return (Digester.digest(of: layer), Digester.digest(of: pair), Digester.digest(of: own))
    }

    static func stats(_ mount: BlobfsMount, _ repositories: [String], _ digest: Digest) throws -> [Glibc.stat] {
        try repositories.map { try Posix.stat(mount.path("repo/\($0)/blobs/\(digest)")).get() }
    }

    @Test(arguments: [[], ["--hard-links"], ["-o", "ro,hard_links"]])
    func aLayerSharedByNRepositoriesIsOneInodeWithNLinks(options: [String]) throws {
        let workspace = try Workspace("hard-links-on")
        defer { workspace.remove() }
        let (layer, pair, own) = try Self.writeSharedStore(root: workspace.root)
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let layers = try Self.stats(mount, Self.sharing, layer)
            #expect(Set(layers.map(\.st_ino)).count == 1, "one st_ino for every name of the layer")
            #expect(layers.map(\.st_nlink) == Array(repeating: UInt(Self.sharing.count), count: Self.sharing.count))
            let pairs = try Self.stats(mount, ["b", "team/c"], pair)
            #expect(pairs[0].st_ino == pairs[1].st_ino && pairs.allSatisfy { $0.st_nlink == 2 })
            #expect(pairs[0].st_ino != layers[0].st_ino)
            let single = try Posix.stat(mount.path("repo/a/blobs/\(own)")).get()
            #expect(single.st_nlink == 1 && single.st_ino != layers[0].st_ino && single.st_ino != pairs[0].st_ino)
            // The same numbers through a listing (readdir, then lookups), as rsync -H sees them.
            let listed = try Command.run("find", [mount.path("repo"), "-type", "f", "-name", "\(layer)", "-printf", "%i %n\\n"])
            let lines = Set(listed.stdoutText.split(separator: "\n"))
            #expect(listed.status == 0 && lines == ["\(layers[0].st_ino) \(Self.sharing.count)"], "\(listed)")
            // Still the layer's bytes under every name.
            #expect(Digester.digest(of: try Posix.readFile(mount.path("repo/team/d/e/blobs/\(layer)"))) == layer)
        }
    }

    @Test(arguments: [["--no-hard-links"], ["-o", "no_hard_links"], ["-o", "hard_links", "--no-hard-links"]])
    func withoutHardLinksEachNameIsAFileOfItsOwn(options: [String]) throws {
        let workspace = try Workspace("hard-links-off")
        defer { workspace.remove() }
        let (layer, _, _) = try Self.writeSharedStore(root: workspace.root)
        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint, options: options) { mount in
            let layers = try Self.stats(mount, Self.sharing, layer)
            #expect(Set(layers.map(\.st_ino)).count == Self.sharing.count, "a distinct st_ino for every name")
            #expect(layers.allSatisfy { $0.st_nlink == 1 })
        }
    }

    @Test func parsesTheHardLinkMountOptions() throws {
        #expect(try MountOptionList(parsing: ["ro,allow_other"]).hardLinks == nil, "neither: the mount's default")
        #expect(try MountOptionList(parsing: ["hard_links"]).hardLinks == true)
        #expect(try MountOptionList(parsing: ["no_hard_links"]).hardLinks == false)
        #expect(try MountOptionList(parsing: ["no_hard_links", "hard_links"]).hardLinks == true, "the last one wins")
    }
}
