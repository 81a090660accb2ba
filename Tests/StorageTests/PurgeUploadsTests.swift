import Distribution
import Storage
import StorageDriver
import Testing
import StorageTesting

/// Ports of the registry's purgeuploads_test.go, all six cases.
@Suite struct PurgeUploadsTests {
    /// Makes `count` uploads in `name` that started at `startedAt`.
    func addUploads(_ store: StoreFixture, _ name: String, count: Int, startedAt: UploadTimestamp) throws -> [DriverPath] {
        let repository = try RepositoryName(name)
        return try (0..<count).map { _ in
            let id = UploadID.random()
            try store.driver.putContent(PathMapper.path(.uploadStartedAt(repository, id)), Array(startedAt.rfc3339.utf8))
            try store.driver.putContent(PathMapper.path(.uploadData(repository, id)), [1, 2, 3])
            return PathMapper.path(.upload(repository, id))
        }
    }

    let now = UploadTimestamp.now()

    @Test func gather() throws {
        let store = try StoreFixture.make("inmemory")
        defer { store.close() }
        let uploads = try addUploads(store, "test-repo", count: 5, startedAt: now - 3600)
        let report = try store.registry.purgeUploads(startedBefore: now, dryRun: true)
        #expect(Set(report.purged) == Set(uploads))
        #expect(try store.allFiles().count == 10, "a dry run deletes nothing")
    }

    @Test func none() throws {
        let store = try StoreFixture.make("inmemory")
        defer { store.close() }
        _ = try addUploads(store, "test-repo", count: 10, startedAt: now)
        let report = try store.registry.purgeUploads(startedBefore: now - 3600)
        #expect(report.purged.isEmpty && report.errors.isEmpty)
        #expect(try store.allFiles().count == 20)
    }

    @Test(arguments: StoreFixture.kinds) func all(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let uploads = try addUploads(store, "test-repo", count: 10, startedAt: now - 3600)
            + addUploads(store, "test-other-repo", count: 1, startedAt: now - 3600)
        let report = try store.registry.purgeUploads(startedBefore: now)
        #expect(report.purged.count == 11 && Set(report.purged) == Set(uploads))
        #expect(report.errors.isEmpty)
        #expect(try store.allFiles().isEmpty)
    }

    @Test func some() throws {
        let store = try StoreFixture.make("inmemory")
        defer { store.close() }
        let old = try addUploads(store, "test-repo", count: 5, startedAt: now - 3600)
        let future = try addUploads(store, "test-repo", count: 4, startedAt: now + 3600)
        let report = try store.registry.purgeUploads(startedBefore: now)
        #expect(Set(report.purged) == Set(old))
        for upload in future { #expect(try store.driver.stat(upload).isDirectory) }
    }

    @Test(arguments: StoreFixture.kinds) func onlyUploads(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let uploads = try addUploads(store, "test-repo", count: 2, startedAt: now - 3600)
        // A sibling directory that looks like uploads must survive.
        let important = dp("/docker/registry/v2/repositories/test-repo/_important/\(UploadID.random())/startedat")
        try store.driver.putContent(important, Array((now - 3600).rfc3339.utf8))
        let report = try store.registry.purgeUploads(startedBefore: now)
        #expect(Set(report.purged) == Set(uploads))
        #expect(try store.driver.getContent(important) == Array((now - 3600).rfc3339.utf8))
    }

    @Test(arguments: StoreFixture.kinds) func missingStartedAt(kind: String) throws {
        let store = try StoreFixture.make(kind)
        defer { store.close() }
        let uploads = try addUploads(store, "test-repo", count: 1, startedAt: now - 3600)
        try store.driver.delete(try uploads[0].appending("startedat"))
        let report = try store.registry.purgeUploads(startedBefore: now)
        #expect(report.purged.isEmpty && report.errors.isEmpty)
        #expect(report.keptWithoutStartTime == uploads)
        #expect(try store.driver.stat(try uploads[0].appending("data")).size == 3)
    }
}
