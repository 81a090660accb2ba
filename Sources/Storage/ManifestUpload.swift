import Distribution
import Logging
import StorageDriver

extension ManifestStore {
    /// Starts an upload of a manifest, for a restore through a read-write mount: the same
    /// `_uploads/<uuid>` and commit as a blob's (verify the bytes against the name, move the data
    /// into `blobs/` unless present, remove the upload), but linked as a revision
    /// (`_manifests/revisions/sha256/<hex>/link`), never in `_layers`, as the registry's manifest
    /// store links it (its `linkedBlobStore` with the revision link path). `_layers` is made first,
    /// so that the repository is in the catalog. The upload takes manifest names only: sha256
    /// digests (the registry stores manifests under sha256 only). The caller keeps the size
    /// within `sizeLimit`.
    public func createUpload() throws(BlobError) -> UploadWriter {
        try driverCall { () throws(StorageDriverError) in try driver.createDirectory(PathMapper.path(.layers(repository))) }
        // No descriptor cache: the registry keeps none for manifest revisions.
        let revisions = LinkedBlobStatter(
            driver: driver, repository: repository, linkSets: [.manifestRevisions], global: global.statter, logger: logger)
        let store = LinkedBlobStore(
            repository: repository, driver: driver, accessController: revisions, global: global, linkSet: .manifestRevisions,
            deleteEnabled: false, logger: logger)
        return try store.createUpload()
    }
}
