import Testing

@testable import S3
import StorageDriver

/// The S3 walk's depth-first order, made without splitting paths per comparison.
@Suite struct S3WalkOrderTests {
    /// The byte order with `/` lowest is the order of components, also where a name is a prefix
    /// of another or holds bytes below `/` (`-`, `.`) that a plain string order puts before it.
    @Test func walkOrderIsComponentOrder() throws {
        let values = [
            "/a", "/a-b", "/a/b", "/a.b", "/a/b/c", "/ab", "/a/b-c", "/a/b/c/d", "/a-", "/b", "/a/-", "/a/b.c/d", "/0", "/a/B",
        ]
        let entries = try values.shuffled().map { WalkEntry(path: try DriverPath($0), kind: .file) }
        let expected = entries.sorted { $0.path.components.lexicographicallyPrecedes($1.path.components) }
        #expect(S3Driver.depthFirst(entries).map(\.path.value) == expected.map(\.path.value))
    }
}
