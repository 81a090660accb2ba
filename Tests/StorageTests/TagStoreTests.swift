import Distribution
@testable import Storage
import StorageDriver
import Testing
import TestSupport
#if canImport(StorageTesting)
import StorageTesting
#endif

/// A repository's tags on both drivers: the registry's write order, what a listing leaves out,
/// and the tag grammar.
@Suite struct TagStoreTests {
    static let v2 = "/docker/registry/v2"

    @Test(arguments: StoreFixture.kinds) func aTagIsWrittenAsTagStoreTagWritesIt(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let tags = try store.registry.repository("team/app").tags
        let first = Digester.digest(of: [1])
        let second = Digester.digest(of: [2])
        try tags.tag(Tag("v1"), to: first)
        let tagDirectory = "\(Self.v2)/repositories/team/app/_manifests/tags/v1"
        #expect(try store.allFiles() == ["\(tagDirectory)/current/link", "\(tagDirectory)/index/sha256/\(first.hex)/link"])
        #expect(try store.driver.getContent(dp("\(tagDirectory)/current/link")) == Array(first.description.utf8))
        #expect(try store.driver.getContent(dp("\(tagDirectory)/index/sha256/\(first.hex)/link")) == Array(first.description.utf8))
        #expect(try tags.current(Tag("v1")) == first)

        // Idempotent, then moved: the old index entry stays, as with the registry.
        try tags.tag(Tag("v1"), to: first)
        try tags.tag(Tag("v1"), to: second)
        #expect(try tags.current(Tag("v1")) == second)
        #expect(try store.allFiles().count == 3)

        #expect(throws: BlobError.self) { try tags.tag(Tag("v2"), to: Digester.digest(of: [1], algorithm: .sha512)) }
        #expect(try store.allFiles().count == 3, "a refused tag writes nothing")

        #expect(try tags.untag(Tag("v1")))
        #expect(try store.allFiles().isEmpty)
        #expect(try !tags.untag(Tag("v1")), "untag is idempotent")
        #expect(try tags.current(Tag("v1")) == nil)
    }

    /// The index link comes first: when the current link cannot be written (here a directory is
    /// in its place), the index entry is already there, and no current link ever lacks its entry.
    @Test(arguments: StoreFixture.kinds) func theIndexLinkIsWrittenBeforeTheCurrentLink(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let tags = try store.registry.repository("a").tags
        let d = Digester.digest(of: [3])
        let tagDirectory = "\(Self.v2)/repositories/a/_manifests/tags/t"
        try store.driver.createDirectory(dp("\(tagDirectory)/current/link"))
        #expect(throws: BlobError.self) { try tags.tag(Tag("t"), to: d) }
        #expect(try store.allFiles() == ["\(tagDirectory)/index/sha256/\(d.hex)/link"])
    }

    @Test(arguments: StoreFixture.kinds) func aListingIsSortedAndLeavesOutWhatHasNoUsableCurrentLink(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let tags = try store.registry.repository("team/app").tags
        let d = Digester.digest(of: [4])
        for name in ["latest", "V2", "_x", "a__b", "1.0", "v1-"] { try tags.tag(Tag(name), to: d) }
        let root = "\(Self.v2)/repositories/team/app/_manifests/tags"
        try store.driver.createDirectory(dp("\(root)/nocurrent/index"))
        try store.driver.putContent(dp("\(root)/empty/current/link"), [])
        try store.driver.putContent(dp("\(root)/newline/current/link"), Array((d.description + "\n").utf8))
        try store.driver.putContent(dp("\(root)/garbage/current/link"), Array("sha256:zz".utf8))
        try store.driver.putContent(dp("\(root)/sha512/current/link"), Array(Digester.digest(of: [4], algorithm: .sha512).description.utf8))
        try store.driver.createDirectory(dp("\(root)/dirlink/current/link"))
        try store.driver.putContent(dp("\(root)/a-file"), [])
        try store.driver.putContent(dp("\(root)/-bad/current/link"), Array(d.description.utf8))

        #expect(try tags.all().map(\.value) == ["1.0", "V2", "_x", "a__b", "latest", "v1-"])
        #expect(try tags.currentLinks().allSatisfy { $0.digest == d })
        #expect(try tags.current(Tag("nocurrent")) == nil)
        #expect(try tags.current(Tag("empty")) == nil)
        #expect(try tags.current(Tag("absent")) == nil)
        for corrupt in ["newline", "garbage", "sha512", "dirlink"] {
            #expect(throws: BlobError.self, "\(corrupt)") { try tags.current(Tag(corrupt)) }
        }
        #expect(try store.registry.repository("no/tags").tags.all().isEmpty)
    }

    /// The registry's grammar, `[\w][\w.-]{0,127}` (reference/regexp.go), with Go's ASCII `\w`.
    @Test func theTagGrammarIsTheRegistrys() throws {
        for good in ["a", "_", "0", "latest", "V1.0-rc_2", "a..b", "v1-", "_x", String(repeating: "a", count: 128)] {
            #expect(throws: Never.self, "\(good)") { try Tag(good) }
        }
        for bad in ["", ".hidden", "-x", "a/b", "a:b", "a b", "é", "a\n", String(repeating: "a", count: 129), "a@b", "sha256:x"] {
            #expect(throws: BlobError.self, "\(bad.debugDescription)") { try Tag(bad) }
        }
    }
}
