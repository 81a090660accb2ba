@testable import BlobFS
import Testing

@Suite struct HandleTableTests {
    private func directory(_ inode: UInt64) -> OpenFile { .directory(OpenDirectory(inode: inode, entries: [])) }

    @Test func numbersStartAtOneAndNameWhatWasInserted() throws {
        let table = HandleTable()
        let first = table.insert(directory(10))
        let second = table.insert(directory(20))
        #expect(first == 1 && second == 2)
        guard case .directory(let open)? = table[second] else { Issue.record("handle 2 is not the directory"); return }
        #expect(open.inode == 20)
        #expect(table.count == 2)
    }

    @Test func unknownNumbersNameNothing() {
        let table = HandleTable()
        _ = table.insert(directory(1))
        #expect(table[0] == nil)
        #expect(table[2] == nil)
        #expect(table[UInt64.max] == nil)
        #expect(table.remove(7) == nil)
    }

    @Test func aReleasedNumberIsFreeForTheNextOpenOnly() {
        let table = HandleTable()
        let first = table.insert(directory(1))
        _ = table.insert(directory(2))
        #expect(table.remove(first) != nil)
        #expect(table[first] == nil)
        #expect(table.remove(first) == nil)  // a second release of the same number is a no-op
        #expect(table.insert(directory(3)) == first)
        #expect(table.count == 2)
    }
}
