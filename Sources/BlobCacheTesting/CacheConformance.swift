import BlobCache
import Distribution

/// A failed check of the shared cache conformance suite, naming the check.
public struct CacheConformanceFailure: Error, CustomStringConvertible {
    public let check: String
    public let detail: String
    public var description: String { "cache conformance \(check): \(detail)" }
}

/// The registry's shared cache suite (upstream's `cachecheck`; docs/storage-format.md, The
/// descriptor cache), written once so that every provider (in-memory, Redis, …) runs the very
/// same checks. Throws the first failure. The provider must start empty.
public func checkBlobDescriptorCacheProvider(_ provider: any BlobDescriptorCacheProvider) throws {
    try CacheConformance(provider: provider).run()
}

private struct CacheConformance {
    let provider: any BlobDescriptorCacheProvider

    func run() throws {
        try emptyRepository()
        try setAndRead()
        try clear()
        try clearRevokesRepositoryMembership()
    }

    // Group A: an empty store.
    func emptyRepository() throws {
        try expect("A1 global stat on an empty cache", BlobError.unknown(digest(.sha384, "abc1"))) {
            try provider.stat(digest(.sha384, "abc1"))
        }
        // A2: an empty repository name cannot even be formed.
        try expect("A2 empty repository name", { $0 is BlobError }) { try RepositoryName("") }
        let scoped = try provider.repositoryScoped(RepositoryName("foo/bar"))
        // A4/A6: an empty digest is exactly "invalid format", before anything reaches the cache.
        try expect("A4 empty digest key", DigestError.invalidFormat("")) { try Digest(parsing: "") }
        try expect("A5 invalid descriptor (negative size)", { $0 is BlobError }) {
            try scoped.setDescriptor(digest(.sha384, "abc1"), Descriptor(digest: digest(.sha256, "abc1"), size: -1))
        }
        try expect("A5 invalid descriptor (no media type)", { $0 is BlobError }) {
            try scoped.setDescriptor(
                digest(.sha384, "abc1"), Descriptor(digest: digest(.sha256, "abc1"), size: 10, mediaType: ""))
        }
        try expect("A7 digest never set", BlobError.unknown(digest(.sha384, "cba1"))) {
            try scoped.stat(digest(.sha384, "cba1"))
        }
        try expect("A8 repository stat on an empty cache", BlobError.unknown(digest(.sha384, "abc1"))) {
            try scoped.stat(digest(.sha384, "abc1"))
        }
    }

    // Group B: set, then read through both scopes; the global media type is first-writer-wins.
    func setAndRead() throws {
        let local = try digest(.sha384, "abc1")
        var expected = Descriptor(digest: try digest(.sha256, "abc1"), size: 10, mediaType: Descriptor.octetStream)
        let scoped = try provider.repositoryScoped(RepositoryName("foo/bar"))
        try attempt("B1 set") { try scoped.setDescriptor(local, expected) }
        try equal("B2 repository stat", expected) { try scoped.stat(local) }
        try equal("B3 repository stat again", expected) { try scoped.stat(local) }
        try equal("B4 global stat of the alias", expected) { try provider.stat(local) }
        try equal("B5 global stat of the canonical digest", expected) { try provider.stat(expected.digest) }
        let globalView = expected
        expected.mediaType = "application/json"
        try attempt("B6 set with another media type") { try scoped.setDescriptor(local, expected) }
        try equal("B6 repository media type is updated", expected) { try scoped.stat(local) }
        try equal("B7 global media type is first-writer-wins", globalView) { try provider.stat(local) }
    }

    // Group C: clear.
    func clear() throws {
        let local = try digest(.sha384, "def1")
        let expected = Descriptor(digest: try digest(.sha256, "def1"), size: 10)
        let scoped = try provider.repositoryScoped(RepositoryName("foo/bar"))
        try attempt("C1 set") { try scoped.setDescriptor(local, expected) }
        try equal("C1 stat", expected) { try scoped.stat(local) }
        try attempt("C2 clear") { try scoped.clear(local) }
        try expect("C3 stat after clear", { _ in true }) { try scoped.stat(local) }
    }

    // v3.1: clearing in one repository revokes its membership even when another re-warms.
    func clearRevokesRepositoryMembership() throws {
        let d = try digest(.sha256, "fed1")
        let descriptor = Descriptor(digest: d, size: 42)
        let a = try provider.repositoryScoped(RepositoryName("revocation/a"))
        let b = try provider.repositoryScoped(RepositoryName("revocation/b"))
        try attempt("R1 set in a") { try a.setDescriptor(d, descriptor) }
        try attempt("R1 set in b") { try b.setDescriptor(d, descriptor) }
        try attempt("R2 clear in a") { try a.clear(d) }
        try expect("R3 a after clear", BlobError.unknown(d)) { try a.stat(d) }
        try attempt("R4 b sets again") { try b.setDescriptor(d, descriptor) }
        try equal("R4 b stat", descriptor) { try b.stat(d) }
        try expect("R5 a stays revoked after b re-warms", BlobError.unknown(d)) { try a.stat(d) }
    }

    // MARK: - Helpers

    /// A digest of `algorithm` whose hex starts with `prefix` and is padded with zeros.
    func digest(_ algorithm: DigestAlgorithm, _ prefix: String) throws -> Digest {
        let text = "\(algorithm.rawValue):\(prefix)\(String(repeating: "0", count: algorithm.hexLength - prefix.count))"
        do {
            return try Digest(parsing: text)
        } catch {
            throw CacheConformanceFailure(check: "the suite's own digest \(text)", detail: "\(error)")
        }
    }

    func attempt(_ check: String, _ body: () throws -> Void) throws {
        do { try body() } catch { throw CacheConformanceFailure(check: check, detail: "unexpected error: \(error)") }
    }

    func equal(_ check: String, _ expected: Descriptor, _ body: () throws -> Descriptor) throws {
        let got: Descriptor
        do { got = try body() } catch {
            throw CacheConformanceFailure(check: check, detail: "expected \(expected), got error \(error)")
        }
        guard got == expected else { throw CacheConformanceFailure(check: check, detail: "expected \(expected), got \(got)") }
    }

    func expect<E: Error & Equatable, T>(_ check: String, _ expected: E, _ body: () throws -> T) throws {
        try expect(check, { ($0 as? E) == expected }, description: "\(expected)", body)
    }

    func expect<T>(
        _ check: String, _ matches: (any Error) -> Bool, description: String = "an error", _ body: () throws -> T
    ) throws {
        let result: T
        do { result = try body() } catch {
            guard matches(error) else {
                throw CacheConformanceFailure(check: check, detail: "expected \(description), got error \(error)")
            }
            return
        }
        throw CacheConformanceFailure(check: check, detail: "expected \(description), got success: \(result)")
    }
}
