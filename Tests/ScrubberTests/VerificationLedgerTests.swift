import Distribution
import Foundation
import Glibc
import Scrubber
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

/// The ledger's file and directory under hostile conditions (F15).
@Suite struct VerificationLedgerFileTests {
    let digest = Digester.digest(of: [7, 8, 9])
    let version = FileVersion(device: 2049, inode: 21, size: 3, modified: 1_700_000_000_000_000_000, changed: 1_700_000_000_000_000_001)

    @Test func aRecordAfterACutLastLineStartsOnALineOfItsOwn() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/ledger"
        try Posix.writeFile(path, Array("# an earlier ledger\nsha256:0123 2049 1".utf8))  // cut mid-record
        #expect(chmod(path, 0o600) == 0)
        try VerificationLedger(path: path).record(digest, version)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("sha256:0123 2049 1\n\(digest) 2049 21 3 \(version.modified) \(version.changed)\n"), "\(text)")
        #expect(try VerificationLedger(path: path).vouches(for: digest, version), "the record survives a reopen")
    }

    @Test(arguments: ["world-writable", "foreign-owner", "sticky", "root-owned"])
    func aLedgerOthersCouldReplaceThroughItsDirectoryIsRefused(directoryKind: String) throws {
        let workspace = try TemporaryDirectory()
        defer { workspace.remove() }
        let directory = workspace.path + "/dir"
        try Posix.makeDirectory(directory)
        switch directoryKind {
        case "world-writable": #expect(chmod(directory, 0o777) == 0)
        case "foreign-owner": #expect(chown(directory, 65534, 65534) == 0)
        case "sticky": #expect(chmod(directory, 0o1777) == 0)  // /tmp: others cannot rename what is not theirs
        default: break
        }
        let path = directory + "/ledger"
        do {
            _ = try VerificationLedger(path: path)
            #expect(["sticky", "root-owned"].contains(directoryKind), "a ledger in a \(directoryKind) directory was accepted")
        } catch {
            #expect(["world-writable", "foreign-owner"].contains(directoryKind), "\(directoryKind): \(error)")
            let reason = directoryKind == "world-writable" ? "writable by everyone without the sticky bit" : "belongs to uid 65534"
            #expect(error.description.hasPrefix("refusing the verification ledger \(path): its directory \(directory) ") && error.description.contains(reason), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: path), "nothing created in a refused directory")
        }
    }
}
