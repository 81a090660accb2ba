@testable import BlobFS
import Distribution
import Testing

/// The packed inode table: numbers stay stable while referenced, never come back for another
/// node once forgotten, and attributes come back as they were given.
@Suite struct InodeTableTests {
    static func digest(_ n: Int, _ algorithm: DigestAlgorithm = .sha256) -> Digest {
        let hex = String(n, radix: 16)
        return try! Digest(parsing: "\(algorithm.rawValue):\(String(repeating: "0", count: algorithm.hexLength - hex.count))\(hex)")
    }

    static func blobAttributes(_ digest: Digest, size: Int64 = 10, mediaType: String = Descriptor.octetStream) -> NodeAttributes {
        NodeAttributes(size: size, modified: 1234, descriptor: Descriptor(digest: digest, size: size, mediaType: mediaType))
    }

    static func blob(_ digest: Digest, in repository: String = "library/alpine") -> Node {
        .blob(BlobName(repository: try! RepositoryName(repository), digest: digest))
    }

    let table = InodeTable(rootAttributes: NodeAttributes(modified: 42))

    @Test func rootIsInodeOneAndIsNeverForgotten() {
        table.forget(InodeTable.rootID, count: 100)
        #expect(table[InodeTable.rootID]?.node == .root)
        #expect(table[InodeTable.rootID]?.attributes.modified == 42)
        #expect(table[0] == nil)
    }

    @Test func aNodeKeepsItsInodeWhileReferenced() {
        let d = Self.digest(1)
        let first = table.reference(Self.blob(d), attributes: Self.blobAttributes(d))
        let second = table.reference(Self.blob(d), attributes: Self.blobAttributes(d))
        #expect(first == second)
        #expect(table[first]?.lookups == 2)
        table.forget(first, count: 1)
        #expect(table[first]?.node == Self.blob(d))
        table.forget(first, count: 1)
        #expect(table[first] == nil)
        #expect(table.attributes(of: Self.blob(d)) == nil)
    }

    @Test func aForgottenNumberNeverNamesAnotherNode() {
        let a = Self.digest(1), b = Self.digest(2)
        let old = table.reference(Self.blob(a), attributes: Self.blobAttributes(a))
        table.forget(old, count: 1)
        let new = table.reference(Self.blob(b), attributes: Self.blobAttributes(b))
        #expect(new != old)
        #expect(table[old] == nil)
        #expect(table[new]?.node == Self.blob(b))
        table.forget(old, count: 1)  // a late forget of the old number leaves the new inode alone
        #expect(table[new]?.lookups == 1)
    }

    @Test func anEntryNeverHandedOutLeavesNoTraceButItsNumber() {
        let d = Self.digest(3)
        let unreferenced = table.reference(Self.blob(d), attributes: Self.blobAttributes(d), countLookup: false)
        table.releaseIfUnreferenced(unreferenced)
        #expect(table[unreferenced] == nil)
        // A listing's temporary numbers are distinct too (d_ino of plain readdir).
        let other = table.reference(Self.blob(Self.digest(4)), attributes: Self.blobAttributes(Self.digest(4)), countLookup: false)
        table.releaseIfUnreferenced(other)
        #expect(other != unreferenced)
        let listed = table.reference(Self.blob(d), attributes: Self.blobAttributes(d), countLookup: false)
        table.addLookup(listed)
        table.releaseIfUnreferenced(listed)
        #expect(table[listed]?.lookups == 1)
    }

    @Test(arguments: DigestAlgorithm.allCases)
    func blobAttributesComeBackWhole(algorithm: DigestAlgorithm) throws {
        let plain = Self.digest(7, algorithm), typed = Self.digest(8, algorithm)
        let plainID = table.reference(Self.blob(plain), attributes: Self.blobAttributes(plain, size: 99))
        let typedID = table.reference(Self.blob(typed), attributes: Self.blobAttributes(typed, mediaType: "application/json"))
        let entry = try #require(table[plainID])
        #expect(entry.node == Self.blob(plain))
        #expect(entry.attributes.size == 99 && entry.attributes.modified == 1234)
        #expect(entry.attributes.descriptor == Descriptor(digest: plain, size: 99))
        #expect(table[typedID]?.attributes.descriptor?.mediaType == "application/json")
        #expect(table.attributes(of: Self.blob(typed))?.descriptor?.mediaType == "application/json")
        // Fresh attributes replace the stored ones, packed again.
        _ = table.reference(Self.blob(typed), attributes: Self.blobAttributes(typed))
        #expect(table[typedID]?.attributes.descriptor == Descriptor(digest: typed, size: 10))
    }

    @Test func directoriesAndUploadsKeepTheirNodes() {
        let directory = table.reference(.directory(path: "team/app"), attributes: NodeAttributes(modified: 5, writableDirectories: true))
        let upload = table.reference(.upload(9), attributes: NodeAttributes(size: 3, modified: 6))
        #expect(table[directory]?.node == .directory(path: "team/app"))
        #expect(table[directory]?.attributes.writableDirectories == true)
        #expect(table[upload]?.node == .upload(9))
        #expect(table[upload]?.attributes.size == 3)
        #expect(table.reference(.directory(path: "team/app"), attributes: NodeAttributes(modified: 5)) == directory)
        table.forget(directory, count: 2)
        #expect(table[directory] == nil)
        #expect(table[upload] != nil)
    }

    /// Each repository's name of a blob is its own inode (an open re-checks that repository's
    /// link), and an alias name keeps the canonical descriptor it was given.
    @Test func namesInRepositoriesAndAliasesAreDistinctInodes() throws {
        let d = Self.digest(11), alias = Self.digest(12, .sha512)
        let a = table.reference(Self.blob(d, in: "team/a"), attributes: Self.blobAttributes(d))
        let b = table.reference(Self.blob(d, in: "team/b"), attributes: Self.blobAttributes(d, size: 20))
        let viaAlias = table.reference(
            Self.blob(alias, in: "team/a"),
            attributes: NodeAttributes(size: 10, modified: 1, descriptor: Descriptor(digest: d, size: 10)))
        #expect(Set([a, b, viaAlias]).count == 3)
        #expect(table[a]?.node == Self.blob(d, in: "team/a"))
        #expect(table[b]?.node == Self.blob(d, in: "team/b"))
        #expect(table[b]?.attributes.size == 20)
        #expect(table[viaAlias]?.attributes.descriptor?.digest == d)
        #expect(table.inode(of: Self.blob(d, in: "team/b")) == b)
        #expect(table.attributes(of: Self.blob(d, in: "team/c")) == nil)
        table.forget(a, count: 1)
        #expect(table[b] != nil && table[a] == nil)
    }

    /// The table's size per blob is the point of its layout: the kernel may hold millions.
    @Test func aSlotStaysSmall() {
        #expect(MemoryLayout<InodeSlot>.stride <= 80)
    }

    @Test func manyBlobsSurviveGrowthAndRemoval() {
        // Enough to grow the digest index several times and to fill many slot chunks; removing
        // every third one exercises the index's backward shift.
        let count = 20_000
        var ids: [UInt64] = []
        for n in 0..<count {
            ids.append(table.reference(Self.blob(Self.digest(n)), attributes: Self.blobAttributes(Self.digest(n), size: Int64(n))))
        }
        #expect(Set(ids).count == count)
        for n in stride(from: 0, to: count, by: 3) { table.forget(ids[n], count: 1) }
        for n in 0..<count {
            let d = Self.digest(n)
            if n % 3 == 0 {
                #expect(table.attributes(of: Self.blob(d)) == nil)
            } else {
                #expect(table.reference(Self.blob(d), attributes: Self.blobAttributes(d, size: Int64(n)), countLookup: false) == ids[n])
                #expect(table[ids[n]]?.attributes.size == Int64(n))
            }
        }
    }
}
