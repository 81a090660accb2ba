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

    let table = InodeTable(rootAttributes: NodeAttributes(modified: 42))

    @Test func rootIsInodeOneAndIsNeverForgotten() {
        table.forget(InodeTable.rootID, count: 100)
        #expect(table[InodeTable.rootID]?.node == .root)
        #expect(table[InodeTable.rootID]?.attributes.modified == 42)
        #expect(table[0] == nil)
    }

    @Test func aNodeKeepsItsInodeWhileReferenced() {
        let d = Self.digest(1)
        let first = table.reference(.blob(d), attributes: Self.blobAttributes(d))
        let second = table.reference(.blob(d), attributes: Self.blobAttributes(d))
        #expect(first == second)
        #expect(table[first]?.lookups == 2)
        table.forget(first, count: 1)
        #expect(table[first]?.node == .blob(d))
        table.forget(first, count: 1)
        #expect(table[first] == nil)
        #expect(table.attributes(of: .blob(d)) == nil)
    }

    @Test func aForgottenNumberNeverNamesAnotherNode() {
        let a = Self.digest(1), b = Self.digest(2)
        let old = table.reference(.blob(a), attributes: Self.blobAttributes(a))
        table.forget(old, count: 1)
        let new = table.reference(.blob(b), attributes: Self.blobAttributes(b))
        #expect(new != old)
        #expect(table[old] == nil)
        #expect(table[new]?.node == .blob(b))
        table.forget(old, count: 1)  // a late forget of the old number leaves the new inode alone
        #expect(table[new]?.lookups == 1)
    }

    @Test func anEntryNeverHandedOutLeavesNoTraceButItsNumber() {
        let d = Self.digest(3)
        let unreferenced = table.reference(.blob(d), attributes: Self.blobAttributes(d), countLookup: false)
        table.releaseIfUnreferenced(unreferenced)
        #expect(table[unreferenced] == nil)
        // A listing's temporary numbers are distinct too (d_ino of plain readdir).
        let other = table.reference(.blob(Self.digest(4)), attributes: Self.blobAttributes(Self.digest(4)), countLookup: false)
        table.releaseIfUnreferenced(other)
        #expect(other != unreferenced)
        let listed = table.reference(.blob(d), attributes: Self.blobAttributes(d), countLookup: false)
        table.addLookup(listed)
        table.releaseIfUnreferenced(listed)
        #expect(table[listed]?.lookups == 1)
    }

    @Test(arguments: DigestAlgorithm.allCases)
    func blobAttributesComeBackWhole(algorithm: DigestAlgorithm) throws {
        let plain = Self.digest(7, algorithm), typed = Self.digest(8, algorithm)
        let plainID = table.reference(.blob(plain), attributes: Self.blobAttributes(plain, size: 99))
        let typedID = table.reference(.blob(typed), attributes: Self.blobAttributes(typed, mediaType: "application/json"))
        let entry = try #require(table[plainID])
        #expect(entry.node == .blob(plain))
        #expect(entry.attributes.size == 99 && entry.attributes.modified == 1234)
        #expect(entry.attributes.descriptor == Descriptor(digest: plain, size: 99))
        #expect(table[typedID]?.attributes.descriptor?.mediaType == "application/json")
        #expect(table.attributes(of: .blob(typed))?.descriptor?.mediaType == "application/json")
        // Fresh attributes replace the stored ones, packed again.
        _ = table.reference(.blob(typed), attributes: Self.blobAttributes(typed))
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

    /// The table's size per blob is the point of its layout: the kernel may hold millions.
    @Test func aSlotStaysSmall() {
        #expect(MemoryLayout<InodeSlot>.stride <= 72)
    }

    @Test func manyBlobsSurviveGrowthAndRemoval() {
        // Enough to grow the digest index several times and to fill many slot chunks; removing
        // every third one exercises the index's backward shift.
        let count = 20_000
        var ids: [UInt64] = []
        for n in 0..<count {
            ids.append(table.reference(.blob(Self.digest(n)), attributes: Self.blobAttributes(Self.digest(n), size: Int64(n))))
        }
        #expect(Set(ids).count == count)
        for n in stride(from: 0, to: count, by: 3) { table.forget(ids[n], count: 1) }
        for n in 0..<count {
            let d = Self.digest(n)
            if n % 3 == 0 {
                #expect(table.attributes(of: .blob(d)) == nil)
            } else {
                #expect(table.reference(.blob(d), attributes: Self.blobAttributes(d, size: Int64(n)), countLookup: false) == ids[n])
                #expect(table[ids[n]]?.attributes.size == Int64(n))
            }
        }
    }
}
