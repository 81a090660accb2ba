import Distribution
import Testing

@Suite struct RepositoryNameTests {
    @Test(arguments: [
        "library/ubuntu", "a", "team/app/web", "a.b_c__d-e---f/0", "blobs/blobs", "x/" + String(repeating: "a", count: 253),
    ])
    func acceptsValidNames(name: String) throws {
        #expect(try RepositoryName(name).value == name)
    }

    @Test(arguments: [
        "", "..", ".", "_layers", "a/_layers", "Library/ubuntu", "a//b", "/a", "a/", "localhost:5000/x", "a b", "a/../b",
        "a-", "-a", "a.", "a___b", "a._b", String(repeating: "a", count: 256), "a\u{0}b", "é",
    ])
    func refusesHostileNames(name: String) {
        #expect(throws: BlobError.self) { try RepositoryName(name) }
    }

    @Test func explainsWhy() {
        func reason(_ name: String) -> String {
            do {
                _ = try RepositoryName(name)
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(reason("Library/x").contains("uppercase"))
        #expect(reason(String(repeating: "a", count: 256)).contains("longer than 255"))
        #expect(reason("a//b").contains("empty path component"))
        #expect(reason("").contains("empty name"))
    }
}
