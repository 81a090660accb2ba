import BlobFS
import Distribution
import Glibc
import StorageDriver
import Testing
import TestSupport

/// The ledger file: what a reopened ledger vouches for after records, forgets and damage.
@Suite struct VerificationLedgerTests {
    let a = Digester.digest(of: [1, 2, 3])
    let b = Digester.digest(of: [4, 5, 6])
    let versionA = FileVersion(device: 2049, inode: 11, size: 3, modified: 1_700_000_000_123_456_789, changed: 1_700_000_001_000_000_001)
    let versionB = FileVersion(device: 2049, inode: 12, size: 3, modified: 1_700_000_000_000_000_000, changed: 1_700_000_000_000_000_000)

    @Test func vouchesOnlyForTheExactVersionAcrossReopensAndForgets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/ledger"
        do {
            let ledger = try VerificationLedger(path: path)
            ledger.record(a, versionA)
            ledger.record(b, versionB)
            ledger.record(b, versionB)  // known: not written twice
            #expect(ledger.count == 2)
        }
        var text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.components(separatedBy: "\n").filter { $0.hasPrefix("sha256:") }.count == 2, "\(text)")

        // Damage a mount cannot have written is skipped, not fatal.
        text += "garbage line\nsha256:nothex 1 2 3 4 5\nforget\n"
        try Posix.writeFile(path, Array(text.utf8))
        #expect(chmod(path, 0o600) == 0)

        let reopened = try VerificationLedger(path: path)
        #expect(reopened.count == 2)
        #expect(reopened.vouches(for: a, versionA))
        #expect(!reopened.vouches(for: b, versionA), "another digest on that file")
        for changed in [
            FileVersion(device: 2049, inode: 11, size: 4, modified: versionA.modified, changed: versionA.changed),
            FileVersion(device: 2049, inode: 11, size: 3, modified: versionA.modified + 1, changed: versionA.changed),
            FileVersion(device: 2049, inode: 11, size: 3, modified: versionA.modified, changed: versionA.changed + 1),
            FileVersion(device: 2050, inode: 11, size: 3, modified: versionA.modified, changed: versionA.changed),
        ] {
            #expect(!reopened.vouches(for: a, changed), "a changed version: \(changed)")
        }

        #expect(reopened.forget([b]) == 1)
        #expect(!reopened.vouches(for: b, versionB))
        // A forget holds across a reopen, and a later record wins over it.
        #expect(try !VerificationLedger(path: path).vouches(for: b, versionB))
        reopened.record(b, versionB)
        #expect(try VerificationLedger(path: path).vouches(for: b, versionB))
    }
}
