import Distribution
import Glibc
import StorageDriver
import S3
import StorageTesting
import Synchronization
import Testing

@testable import Storage

/// `Registry.linkCensus`: every blob's names across the store, as the hard links of a mount
/// report them (st_nlink), kept only for the blobs with more than one.
@Suite struct LinkCensusTests {
    /// On S3 (moto) the repositories are found level by level (no walk of every key), and, with
    /// fewer repositories than requests in flight, each `_layers/sha256/` is listed as 16
    /// listings by first hex digit; the count is the same as one listing's.
    @Test func onS3EachSha256DirectoryIsListedByItsFirstDigitAndCountsTheSame() throws {
        let recording = PrefixRecordingDriver(base: try BlobDataCacheTests.s3Driver("census"))
        let fixtureV2 = "/docker/registry/v2/repositories"
        let digests = (0..<40).map { digest("layer \($0)") }
        func link(_ repository: String, _ name: String, to target: Digest) throws {
            try recording.putContent(try DriverPath("\(fixtureV2)/\(repository)/_layers/sha256/\(name)/link"), Array(target.description.utf8))
        }
        for target in digests { try link("a", target.hex, to: target) }
        for target in digests.prefix(10) { try link("team/b", target.hex, to: target) }
        try link("team/b", "not-a-digest", to: digests[0])
        try link("a/c", digest("nested").hex, to: digest("nested"))  // a repository below another one
        // Found level by level with listings of the name tree, not a walk of every key.
        #expect(try Registry(driver: recording).repositories().map(\.description) == ["a", "a/c", "team/b"])
        #expect(recording.walks.withLock { $0 } == 0)
        let census = try Registry(driver: recording).linkCensus()
        #expect(census.shared == Dictionary(uniqueKeysWithValues: digests.prefix(10).map { (LinkCensus.key(of: $0), UInt32(2)) }))
        let prefixes = recording.prefixes.withLock { $0 }
        for repository in ["a", "a/c", "team/b"] {
            #expect(prefixes["\(fixtureV2)/\(repository)/_layers/sha256"]?.sorted() == "0123456789abcdef".map(String.init), "\(prefixes)")
        }
    }

    static let v2 = "/docker/registry/v2/repositories"

    /// A blob's digest made from a seed, as a registry would name it.
    func digest(_ seed: String) -> Digest { Digester.digest(of: Array(seed.utf8)) }

    func link(_ fixture: StoreFixture, _ repository: String, _ name: String, to target: Digest) throws {
        try fixture.driver.putContent(try DriverPath("\(Self.v2)/\(repository)/_layers/\(name)/link"), Array(target.description.utf8))
    }

    @Test(arguments: StoreFixture.kinds) func countsEveryNameAcrossRepositoriesAndKeepsOnlyShared(kind: String) throws {
        let fixture = try StoreFixture.make(kind)
        defer { fixture.close() }
        let base = digest("base layer"), own = digest("own layer"), aliased = digest("aliased layer")
        let alias = Digester.digest(of: Array("aliased layer".utf8), algorithm: .sha512)
        for repository in ["a", "b", "team/c"] { try link(fixture, repository, "sha256/\(base.hex)", to: base) }
        try link(fixture, "a", "sha256/\(own.hex)", to: own)
        // One blob: its sha256 name in `a`, and a sha512 alias (a link to the sha256 digest) in
        // `a` and in `b`: three names.
        try link(fixture, "a", "sha256/\(aliased.hex)", to: aliased)
        try link(fixture, "a", "sha512/\(alias.hex)", to: aliased)
        try link(fixture, "b", "sha512/\(alias.hex)", to: aliased)
        // Names that are no digest count nothing; a name prefix without `_layers` is no repository.
        try fixture.driver.putContent(try DriverPath("\(Self.v2)/b/_layers/sha256/\(base.hex.uppercased())/link"), [])
        try fixture.driver.putContent(try DriverPath("\(Self.v2)/b/_layers/sha256/not-a-digest/link"), [])
        try fixture.driver.putContent(try DriverPath("\(Self.v2)/team/_manifests/revisions/sha256/\(base.hex)/link"), Array(base.description.utf8))

        let census = try fixture.registry.linkCensus()
        #expect(census.names(of: LinkCensus.key(of: base)) == 3)
        #expect(census.names(of: LinkCensus.key(of: aliased)) == 3)
        #expect(census.names(of: LinkCensus.key(of: own)) == 1)
        #expect(census.shared == [LinkCensus.key(of: base): 3, LinkCensus.key(of: aliased): 3])
    }

    @Test(arguments: StoreFixture.kinds) func aRepositoryWithoutReadableLayersCountsNothingAndTheOthersStillCount(kind: String) throws {
        let fixture = try StoreFixture.make(kind)
        defer { fixture.close() }
        let shared = digest("shared")
        for repository in ["a", "b", "c", "d"] { try link(fixture, repository, "sha256/\(shared.hex)", to: shared) }
        // `c`'s sha256 directory is a file: nothing it links can be listed.
        try fixture.driver.delete(try DriverPath("\(Self.v2)/c/_layers/sha256"))
        try fixture.driver.putContent(try DriverPath("\(Self.v2)/c/_layers/sha256"), [0])
        // `e` is a repository (its `_layers` exists) that links nothing yet.
        try fixture.driver.createDirectory(try DriverPath("\(Self.v2)/e/_layers"))
        if let root = fixture.directory?.path {
            // `d`'s sha256 directory is a symbolic link to `a`'s: never followed, so unreadable.
            let layers = "\(root)\(Self.v2)/d/_layers"
            try fixture.driver.delete(try DriverPath("\(Self.v2)/d/_layers/sha256"))
            #expect(symlink("../../a/_layers/sha256", "\(layers)/sha256") == 0)
            #expect(try fixture.registry.linkCensus().names(of: LinkCensus.key(of: shared)) == 2)
        } else {
            #expect(try fixture.registry.linkCensus().names(of: LinkCensus.key(of: shared)) == 3)
        }
    }

    @Test(arguments: StoreFixture.kinds) func manyRepositoriesSharingHalfTheirLinks(kind: String) throws {
        let fixture = try StoreFixture.make(kind)
        defer { fixture.close() }
        let common = (0..<20).map { digest("common \($0)") }
        for r in 0..<30 {
            for blob in common + (0..<20).map({ digest("repository \(r) blob \($0)") }) {
                try link(fixture, "many/r\(r)", "sha256/\(blob.hex)", to: blob)
            }
        }
        let census = try fixture.registry.linkCensus()
        #expect(census.shared == Dictionary(uniqueKeysWithValues: common.map { (LinkCensus.key(of: $0), UInt32(30)) }))
        #expect(census.names(of: LinkCensus.key(of: digest("repository 7 blob 3"))) == 1)
    }

    /// A link directory's name is a key only if it is 64 lowercase hex digits: every byte value
    /// at every position of a valid name, against `Digest(parsing:)`.
    @Test func aNameIsAKeyOnlyIfItIsASha256Hex() throws {
        let valid = Array(("0123456789abcdef" + Digester.digest(of: [1, 2, 3]).hex.dropFirst(16)).utf8)
        #expect(valid.withUnsafeBytes { LinkCensus.key(ofSHA256Name: $0) } == 0x0123_4567_89ab_cdef)
        var mismatches: [String] = []
        for position in 0..<64 {
            for byte in UInt8.min...UInt8.max {
                var name = valid
                name[position] = byte
                let parsed = (try? Digest(parsing: "sha256:" + String(decoding: name, as: UTF8.self))).map(LinkCensus.key(of:))
                let key = name.withUnsafeBytes { LinkCensus.key(ofSHA256Name: $0) }
                if key != parsed { mismatches.append("byte \(byte) at \(position): \(String(describing: key)) != \(String(describing: parsed))") }
            }
        }
        #expect(mismatches.count == 0, "\(mismatches.prefix(5))")
        for length in [0, 63, 65, 128] {
            let name = [UInt8](repeating: UInt8(ascii: "a"), count: length)
            #expect(name.withUnsafeBytes { LinkCensus.key(ofSHA256Name: $0) } == nil)
        }
    }

    @Test func theKeyIsTheDigestsFirst64Bits() throws {
        let digest = try Digest(parsing: "sha256:0123456789abcdef" + String(repeating: "f", count: 48))
        #expect(LinkCensus.key(of: digest) == 0x0123_4567_89ab_cdef)
        #expect(LinkCensus().names(of: 0x0123_4567_89ab_cdef) == 1)
    }
}

/// Records the prefixes each directory was listed by.
private final class PrefixRecordingDriver: ForwardingDriver {
    let base: any StorageDriver
    let prefixes = Mutex<[String: [String]]>([:])
    let walks = Mutex(0)

    init(base: any StorageDriver) { self.base = base }

    var name: String { "recording \(base.name)" }
    var requestConcurrency: RequestConcurrency { base.requestConcurrency }

    func enumerateNames(
        in path: DriverPath, startingWith prefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        prefixes.withLock { $0[path.value, default: []].append(prefix) }
        try base.enumerateNames(in: path, startingWith: prefix, body)
    }

    func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        walks.withLock { $0 += 1 }
        try base.walk(path, visit)
    }
}
