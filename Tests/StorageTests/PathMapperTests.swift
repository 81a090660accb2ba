import Distribution
import Storage
import StorageDriver
import Testing
import StorageTesting

/// The registry's TestPathMapper and TestDigestFromPath, with full-length digests.
@Suite struct PathMapperTests {
    let name = try! RepositoryName("foo/bar")
    let d = try! Digest(parsing: "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
    let id = try! UploadID("0f2d3a10-8f7d-4b4c-9a47-6a1d7c3b2e10")
    let tag = try! Tag("thetag")
    let r = "/docker/registry/v2/repositories/foo/bar"
    let hex = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

    @Test func everyPathIsTheRegistrysExactString() {
        let expected: [(PathSpec, String)] = [
            (.blobs, "/docker/registry/v2/blobs"),
            (.blob(d), "/docker/registry/v2/blobs/sha256/ab/\(hex)"),
            (.blobData(d), "/docker/registry/v2/blobs/sha256/ab/\(hex)/data"),
            (.repositoriesRoot, "/docker/registry/v2/repositories"),
            (.repository(name), r),
            (.layers(name), "\(r)/_layers"),
            (.layerLink(name, d), "\(r)/_layers/sha256/\(hex)/link"),
            (.manifests(name), "\(r)/_manifests"),
            (.manifestRevisions(name), "\(r)/_manifests/revisions"),
            (.manifestRevision(name, d), "\(r)/_manifests/revisions/sha256/\(hex)"),
            (.manifestRevisionLink(name, d), "\(r)/_manifests/revisions/sha256/\(hex)/link"),
            (.manifestTags(name), "\(r)/_manifests/tags"),
            (.manifestTag(name, tag), "\(r)/_manifests/tags/thetag"),
            (.manifestTagCurrent(name, tag), "\(r)/_manifests/tags/thetag/current/link"),
            (.manifestTagIndex(name, tag), "\(r)/_manifests/tags/thetag/index"),
            (.manifestTagIndexEntry(name, tag, d), "\(r)/_manifests/tags/thetag/index/sha256/\(hex)"),
            (.manifestTagIndexEntryLink(name, tag, d), "\(r)/_manifests/tags/thetag/index/sha256/\(hex)/link"),
            (.uploads(name), "\(r)/_uploads"),
            (.upload(name, id), "\(r)/_uploads/\(id)"),
            (.uploadData(name, id), "\(r)/_uploads/\(id)/data"),
            (.uploadStartedAt(name, id), "\(r)/_uploads/\(id)/startedat"),
            (.uploadHashStates(name, id, .sha256), "\(r)/_uploads/\(id)/hashstates/sha256"),
            (.uploadHashState(name, id, .sha256, offset: 100000), "\(r)/_uploads/\(id)/hashstates/sha256/100000"),
        ]
        for (spec, path) in expected {
            #expect(PathMapper.path(spec).value == path, "\(spec)")
        }
    }

    @Test func aliasLinksUseTheirOwnAlgorithm() throws {
        let sha512 = try Digest(parsing: "sha512:" + String(repeating: "b7", count: 64))
        #expect(LinkSet.layers.path(name, sha512).value == "\(r)/_layers/sha512/\(sha512.hex)/link")
        #expect(PathMapper.path(.blobData(sha512)).value == "/docker/registry/v2/blobs/sha512/b7/\(sha512.hex)/data")
    }

    @Test func digestFromBlobDataPath() throws {
        let hex = "9943fffae777400c0344c58869c1b6aee8fc0d2a69ad85eef4d6b3a8e0b07c86"
        let path = try DriverPath("/docker/registry/v2/blobs/sha256/99/\(hex)/data")
        #expect(try PathMapper.digest(fromBlobDataPath: path).description == "sha256:\(hex)")
        for bad in ["/docker/registry/v2/blobs/sha256/99/\(hex)/link", "/docker/registry/v2/blobs/md5/99/\(hex)/data",
            "/docker/registry/v2/blobs/sha256/99/abc/data", "/elsewhere/sha256/99/\(hex)/data"]
        {
            #expect(throws: BlobError.self) { try PathMapper.digest(fromBlobDataPath: DriverPath(bad)) }
        }
    }

    @Test func uploadIDsAreRandomLowercaseVersion4UUIDs() throws {
        var seen = Set<String>()
        for _ in 0..<100 {
            let id = UploadID.random().value
            #expect(id.range(of: "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression) != nil)
            seen.insert(id)
        }
        #expect(seen.count == 100)
        #expect(throws: BlobError.uploadUnknown("../../etc")) { try UploadID("../../etc") }
    }
}

import Foundation
