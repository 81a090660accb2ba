import Distribution
import Logging
import StorageDriver

/// How many names every blob has across the store: for each blob, the link files of every
/// repository's `_layers` that name it (a repository linking a blob under its sha256 and a
/// sha512 alias gives it two names). Only the blobs with more than one name are kept, by a
/// 64-bit key of their canonical digest: for a store of 100,000 links that share nothing, the
/// census is an empty table.
public struct LinkCensus: Sendable {
    /// Names per blob, by `key(of:)`, for the blobs with more than one; any other blob has one.
    public var shared: [UInt64: UInt32]

    public init(shared: [UInt64: UInt32] = [:]) {
        self.shared = shared
    }

    /// The blob's number of names: one unless the census counted more.
    public func names(of key: UInt64) -> UInt32 { shared[key] ?? 1 }

    /// The key a blob is counted by: the first 64 bits (16 hex digits) of its canonical digest.
    /// Two blobs share a key only if their digests agree in 64 bits.
    public static func key(of canonical: Digest) -> UInt64 {
        var hex = canonical.hex
        return hex.withUTF8 { key(ofHex: UnsafeRawBufferPointer($0)) }
    }

    /// The key of a sha256 link's directory name, or nil unless it is 64 lowercase hex digits
    /// (what `Digest(parsing:)` would accept). Eight bytes at a time: a byte-by-byte check took
    /// a fifth of the census's time (~200 ns a name; this, ~10 ns).
    static func key(ofSHA256Name name: UnsafeRawBufferPointer) -> UInt64? {
        guard name.count == DigestAlgorithm.sha256.hexLength, let base = name.baseAddress else { return nil }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        // The high bit of each byte below 0x80 that is at least `low` (no carry between bytes:
        // b + 0x80 - low stays below 0x100 for b < 0x80 and low ≥ 0x30; a byte with its high bit
        // set makes the name invalid anyway).
        func atLeast(_ x: UInt64, _ low: UInt64) -> UInt64 { (x &+ ones &* (0x80 - low)) & high }
        func word(_ offset: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        var invalid: UInt64 = 0
        for offset in stride(from: 0, to: 64, by: 8) {
            let x = word(offset)
            let digit = atLeast(x, 0x30) & ~atLeast(x, 0x3A)  // 0-9
            let letter = atLeast(x, 0x61) & ~atLeast(x, 0x67)  // a-f
            invalid |= (x & high) | ((digit | letter) ^ high)
        }
        guard invalid == 0 else { return nil }
        // Eight hex digits (the first in the lowest byte) as a 32-bit number: each byte's value
        // (the low nibble, plus 9 for a letter), then pairs of bytes, pairs of pairs, folded.
        func number(_ offset: Int) -> UInt64 {
            let x = word(offset)
            var v = (x & 0x0F0F_0F0F_0F0F_0F0F) &+ ((x >> 6) & ones) &* 9
            v = (v << 4 | v >> 8) & 0x00FF_00FF_00FF_00FF
            v = (v << 8 | v >> 16) & 0x0000_FFFF_0000_FFFF
            return (v << 16 | v >> 32) & 0xFFFF_FFFF
        }
        return number(0) << 32 | number(8)
    }

    /// The first 16 of lowercase hex digits known to be valid, as a number.
    private static func key(ofHex hex: UnsafeRawBufferPointer) -> UInt64 {
        var value: UInt64 = 0
        for c in hex.prefix(16) {
            value = value << 4 | UInt64(c <= UInt8(ascii: "9") ? c &- UInt8(ascii: "0") : c &- UInt8(ascii: "a") &+ 10)
        }
        return value
    }
}

extension Registry {
    /// Counts every blob's names across the store (`LinkCensus`). Cheap enough to take as a mount
    /// starts: a sha256 name's link must hold that very digest (`LinkedBlobStatter.checkTarget`),
    /// so those names are counted from directory listings alone, read as bytes in the driver's
    /// batches (no `String` or `Digest` per name); only alias links (sha384, sha512) are read.
    /// The repositories are listed in parallel, each into an array of keys, and the keys counted
    /// in one set at the end (measured, docs/architecture.md "Inodes": most of the time is the
    /// kernel's readdir). An empty or dangling sha256 link still counts: the count is what tools
    /// compare hard-link numbers with, and one too many only means a partner they do not find. A
    /// repository whose `_layers` cannot be read is left out with a warning (its blobs count
    /// fewer names: a tool copies them twice).
    public func linkCensus() throws(BlobError) -> LinkCensus {
        let repositories = try repositories()
        // A store that lists by prefix (S3) and has fewer repositories than it takes requests at
        // once lists each `_layers/sha256/` as 16 listings by first hex digit side by side (one
        // paged listing of 10,002 links is 11 requests one after the other; a fresh mount's first
        // `stat` may wait for the census). With more repositories than that, they fill the
        // requests already, and 16 listings of each would only multiply small ones.
        let concurrency = driver.requestConcurrency
        let byDigit = driver.listsByPrefix && repositories.count < concurrency.threads
        let count = { @Sendable (name: RepositoryName) in
            Result { () throws(StorageDriverError) in try self.linkKeys(of: name, byFirstDigit: byDigit) }
        }
        // Local: one thread per CPU, as measured (docs/architecture.md, "Inodes"); remote: as many
        // requests in flight as the store takes.
        let perRepository = concurrency.isRemote ? repositories.concurrentMap(concurrency, count) : repositories.concurrentMap(minimumPerThread: 1, count)
        var total = 0
        for (name, keys) in zip(repositories, perRepository) {
            switch keys {
            case .success(let keys): total += keys.count
            case .failure(let error):
                logger.warning(
                    "cannot count a repository's links: its blobs show fewer hard links",
                    metadata: ["repository": "\(name)", "error": "\(error)"])
            }
        }
        var seen = Set<UInt64>(minimumCapacity: total)
        var shared: [UInt64: UInt32] = [:]
        for case .success(let keys) in perRepository {
            for key in keys where !seen.insert(key).inserted { shared[key, default: 1] += 1 }
        }
        return LinkCensus(shared: shared)
    }

    /// The key of every blob `name` links under `_layers`, once per name (a missing `_layers` or
    /// algorithm directory links nothing).
    private func linkKeys(of name: RepositoryName, byFirstDigit: Bool) throws(StorageDriverError) -> [UInt64] {
        let root = PathMapper.path(.layers(name))
        let algorithms: [DigestAlgorithm]
        do throws(StorageDriverError) {
            algorithms = try driver.list(root).compactMap(DigestAlgorithm.init(rawValue:))
        } catch .pathNotFound {
            return []
        }
        var keys: [UInt64] = []
        for algorithm in algorithms {
            let directory = try root.appending(algorithm.rawValue)
            do throws(StorageDriverError) {
                if algorithm == .sha256 && byFirstDigit {
                    // Names that do not start with a lowercase hex digit are no sha256 key anyway.
                    let parts = Self.hexDigits.concurrentMap(driver.requestConcurrency) { digit in
                        Result { () throws(StorageDriverError) -> [UInt64] in
                            var keys: [UInt64] = []
                            try self.driver.enumerateNames(in: directory, startingWith: digit) { batch in
                                batch.forEach { hex in
                                    if let key = LinkCensus.key(ofSHA256Name: hex) { keys.append(key) }
                                }
                            }
                            return keys
                        }
                    }
                    for part in parts { keys += try part.get() }
                } else if algorithm == .sha256 {
                    try driver.enumerateNames(in: directory) { batch in
                        batch.forEach { hex in
                            if let key = LinkCensus.key(ofSHA256Name: hex) { keys.append(key) }
                        }
                    }
                } else {
                    for member in try driver.members(named: "link", in: directory, limit: LinkedBlobStatter.linkLimit) {
                        let path = (try? directory.appending(member.child).appending("link")) ?? directory
                        if let target = try? LinkedBlobStatter.target(ofLink: member.content, at: path) { keys.append(LinkCensus.key(of: target)) }
                    }
                }
            } catch .pathNotFound {
                continue
            }
        }
        return keys
    }

    private static let hexDigits = "0123456789abcdef".map(String.init)
}
