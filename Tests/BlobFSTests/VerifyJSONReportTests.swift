import Distribution
import Foundation
import Glibc
import Storage
import StorageDriver
import Testing
import TestSupport

/// `blobfs verify --format json`: one document on standard output that a backup job parses.
@Suite struct VerifyJSONReportTests {
    /// What the test damaged, and the problem it expects for it.
    struct Expected: CustomStringConvertible {
        var kind: String
        var repository: String?
        var digest: String?
        var path: String?
        var dataPath: String?
        var tag: String?
        var description: String { "\(kind) in \(repository ?? "null") \(digest ?? "null") at \(path ?? "null")" }
    }

    /// A store with one problem of every kind verify reports (and one incomplete image), scrubbed
    /// as an unprivileged user so that files can be unreadable and directories unreachable.
    @Test func everyKindOfProblemOnceWithItsRepositoryDigestAndPath() throws {
        let workspace = try Workspace("verify-json")
        defer { workspace.remove() }
        let root = workspace.root
        let names = ["corrupt", "missing", "notregular", "unreadable", "garbage", "empty", "wrong", "deleted", "unreachable", "intact"]
        let blobs = try writeStore(root: root, names.enumerated().map { ($1, seededBytes(count: 2000 + $0, seed: 90 + UInt64($0))) })
        let blob = Dictionary(uniqueKeysWithValues: zip(names, blobs))
        func data(_ name: String) -> String { root + PathMapper.path(.blobData(blob[name]!.canonical)).value }
        func link(_ name: String) -> String { root + PathMapper.path(.layerLink(try! RepositoryName(name), blob[name]!.canonical)).value }
        let image = try incompleteImage(root: root)

        try Posix.flipByte(in: data("corrupt"), at: 1000)
        #expect(unlink(data("missing")) == 0)
        #expect(unlink(data("notregular")) == 0 && mkfifo(data("notregular"), 0o644) == 0)
        try Posix.writeFile(link("garbage"), Array("garbage".utf8))
        try Posix.writeFile(link("empty"), [])
        try Posix.writeFile(link("wrong"), Array(blob["intact"]!.canonical.description.utf8))
        let deletedBlob = root + PathMapper.path(.blob(blob["deleted"]!.canonical)).value
        #expect(try Command.run("rm", ["-r", deletedBlob]).status == 0)
        // Readable by the scrubbing user, except what must not be.
        #expect(try Command.run("chmod", ["-R", "go+rX", workspace.path("")]).status == 0)
        #expect(chmod(link("unreadable"), 0o600) == 0)
        let unreachable = root + "/docker/registry/v2/repositories/unreachable/_layers/sha256"
        #expect(chmod(unreachable, 0o700) == 0)

        let hex = { (name: String) in blob[name]!.canonical.description }
        let expected = [
            Expected(kind: "corrupt data", repository: nil, digest: hex("corrupt"), path: data("corrupt")),
            Expected(kind: "missing data", repository: "missing", digest: hex("missing"), path: link("missing"), dataPath: data("missing")),
            Expected(
                kind: "not a regular file", repository: "notregular", digest: hex("notregular"), path: link("notregular"),
                dataPath: data("notregular")),
            Expected(kind: "unreadable", repository: "unreadable", digest: hex("unreadable"), path: link("unreadable")),
            Expected(kind: "garbage link", repository: "garbage", digest: hex("garbage"), path: link("garbage")),
            Expected(kind: "empty link", repository: "empty", digest: hex("empty"), path: link("empty")),
            Expected(kind: "wrong link", repository: "wrong", digest: hex("wrong"), path: link("wrong")),
            Expected(kind: "link to a deleted blob", repository: "deleted", digest: hex("deleted"), path: link("deleted")),
            Expected(kind: "unreachable", repository: "unreachable", digest: nil, path: unreachable),
            Expected(kind: "incomplete image", repository: "img", digest: image.description, path: nil, tag: "v1"),
        ]

        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", try BlobfsExecutable.path()]
        let result = try Command.run("setpriv", asNobody + ["verify", "--format", "json", "--images", root], timeout: 120)
        #expect(result.status == 1, "\(result)")
        #expect(result.stderrText.isEmpty, "\(result)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "\(result)")
        let problems = try #require(document["problems"] as? [[String: Any]], "\(result)")
        #expect(problems.count == expected.count, "\(result)")
        for wanted in expected {
            let found = problems.filter { $0["kind"] as? String == wanted.kind }
            #expect(found.count == 1, "\(wanted): \(found.count) problems of that kind\n\(result)")
            guard let problem = found.first else { continue }
            // Every key is there in every problem, null where the problem has none.
            #expect(Set(problem.keys) == ["kind", "repository", "digest", "path", "dataPath", "tag", "detail", "missing", "failing"])
            #expect(problem["repository"] as? String == wanted.repository && (wanted.repository != nil || problem["repository"] is NSNull), "\(wanted): \(problem)")
            #expect(problem["digest"] as? String == wanted.digest && (wanted.digest != nil || problem["digest"] is NSNull), "\(wanted): \(problem)")
            #expect(problem["path"] as? String == wanted.path && (wanted.path != nil || problem["path"] is NSNull), "\(wanted): \(problem)")
            #expect(problem["dataPath"] as? String == wanted.dataPath, "\(wanted): \(problem)")
            #expect(problem["tag"] as? String == wanted.tag, "\(wanted): \(problem)")
            #expect(problem["failing"] as? Bool == true, "\(wanted): \(problem)")
            #expect((problem["detail"] as? String)?.isEmpty == false, "\(wanted): \(problem)")
        }
        let counts = try #require(document["counts"] as? [String: Any])
        let byKind = try #require(counts["byKind"] as? [String: Int])
        #expect(byKind == Dictionary(uniqueKeysWithValues: expected.map { ($0.kind, 1) }), "\(counts)")
        #expect(counts["problems"] as? Int == expected.count && counts["failing"] as? Int == expected.count, "\(counts)")
        #expect(counts["imagesChecked"] as? Int == 1, "\(counts)")
        #expect(document["intact"] as? Bool == false)
        #expect(document["storageRoot"] as? String == root)
        #expect(document["repository"] is NSNull && document["ledger"] is NSNull)

        // Links to deleted blobs reported but not failing: exit status 0, the report intact.
        let lenient = try Command.run(
            try BlobfsExecutable.path(), ["verify", "--format", "json", "--repository", "deleted", "--ignore-deleted-blob-links", root],
            timeout: 120)
        #expect(lenient.status == 0, "\(lenient)")
        let lenientDocument = try #require(try JSONSerialization.jsonObject(with: Data(lenient.stdout)) as? [String: Any])
        let lenientProblems = try #require(lenientDocument["problems"] as? [[String: Any]])
        #expect(lenientProblems.count == 1 && lenientProblems.first?["failing"] as? Bool == false, "\(lenient)")
        #expect(lenientDocument["intact"] as? Bool == true && lenientDocument["repository"] as? String == "deleted", "\(lenient)")
        #expect((lenientDocument["counts"] as? [String: Any])?["imagesChecked"] is NSNull, "\(lenient)")
    }

    /// On a terminal, progress goes to standard error as with text; standard output is the
    /// document alone, the same bytes as without a terminal.
    @Test func progressOnATerminalStaysOutOfTheDocument() throws {
        let workspace = try Workspace("verify-json-tty")
        defer { workspace.remove() }
        let root = workspace.root
        _ = try writeStore(root: root, [("app", seededBytes(count: 1 << 20, seed: 99))])
        let executable = try BlobfsExecutable.path()
        let output = workspace.path("report.json")
        let typescript = workspace.path("terminal")
        // script(1) gives the command a terminal; only standard output is sent to a file.
        let shell = "'\(executable)' verify --format json '\(root)' > '\(output)'"
        let result = try Command.run("script", ["-q", "-e", "-c", shell, typescript], timeout: 120)
        #expect(result.status == 0, "\(result)")
        let terminal = String(decoding: try Posix.readFile(typescript), as: UTF8.self)
        #expect(terminal.contains("verifying blobs: "), "no progress on the terminal: \(terminal)")
        let report = try Posix.readFile(output)
        #expect(!report.contains(0x0D) && !report.contains(0x1B), "progress in the document")
        let plain = try Command.run(executable, ["verify", "--format", "json", root], timeout: 120)
        #expect(plain.status == 0 && plain.stdout == report, "\(plain)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(report)) as? [String: Any])
        #expect(document["intact"] as? Bool == true)
        #expect((document["counts"] as? [String: Any])?["bytesHashed"] as? Int == 1 << 20)
    }

    /// Repository `img`: an image manifest tagged v1 whose layer the repository no longer links.
    private func incompleteImage(root: String) throws -> Digest {
        let registry = Registry(driver: try FilesystemDriver(root: root))
        let repository = try registry.repository("img")
        let config = try repository.blobs.put(mediaType: "application/vnd.oci.image.config.v1+json", Array("{}".utf8)).digest
        let layer = try repository.blobs.put(mediaType: "application/vnd.oci.image.layer.v1.tar", Array("layer bytes".utf8)).digest
        let json = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"\(config)"},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":11,"digest":"\(layer)"}]}
            """
        let manifest = try repository.manifests.put(Array(json.utf8), as: Digester.digest(of: Array(json.utf8))).digest
        try repository.tags.tag(try Tag("v1"), to: manifest)
        try FilesystemDriver(root: root).delete(PathMapper.path(.layerLink(try RepositoryName("img"), layer)))
        return manifest
    }
}
