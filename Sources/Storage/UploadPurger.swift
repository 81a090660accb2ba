import Distribution
import StorageDriver

/// What a purge of stale uploads did.
public struct PurgeReport: Sendable {
    /// Upload directories removed (or, in a dry run, that would be).
    public var purged: [DriverPath] = []
    /// Upload directories kept because they have no readable `startedat`.
    public var keptWithoutStartTime: [DriverPath] = []
    /// Failures to remove, with the reason; the purge goes on past them.
    public var errors: [String] = []
}

extension Registry {
    /// Removes uploads started before `cutoff` (docs/storage-format.md, Purging uploads): only
    /// UUID-named directories under `_uploads`, and never one without a readable `startedat`.
    public func purgeUploads(startedBefore cutoff: UploadTimestamp, dryRun: Bool = false) throws(BlobError) -> PurgeReport {
        var report = PurgeReport()
        let root = PathMapper.path(.repositoriesRoot)
        do throws(StorageDriverError) {
            try driver.walk(root) { (entry) throws(StorageDriverError) in
                let name = entry.path.name
                guard name.hasPrefix("_") else { return .continue }
                if name == "_uploads", entry.kind == .directory {
                    try purge(uploadsDirectory: entry.path, cutoff: cutoff, dryRun: dryRun, into: &report)
                }
                return .skipDirectory
            }
        } catch .pathNotFound {
            return report
        } catch {
            throw error.blobError
        }
        return report
    }

    private func purge(
        uploadsDirectory: DriverPath, cutoff: UploadTimestamp, dryRun: Bool, into report: inout PurgeReport
    ) throws(StorageDriverError) {
        let children: [String]
        do throws(StorageDriverError) { children = try driver.list(uploadsDirectory) } catch .pathNotFound { return }
        for child in children where UploadID.isUUID(child) {
            guard let upload = try? uploadsDirectory.appending(child), let startedAtPath = try? upload.appending("startedat")
            else { continue }
            let startedAt = (try? driver.getContent(startedAtPath, limit: 4096)).flatMap {
                UploadTimestamp(rfc3339: String(decoding: $0, as: UTF8.self))
            }
            guard let startedAt else {
                report.keptWithoutStartTime.append(upload)
                continue
            }
            guard startedAt < cutoff else { continue }
            if !dryRun {
                do throws(StorageDriverError) {
                    try driver.delete(upload)
                } catch .pathNotFound {
                    continue
                } catch {
                    report.errors.append("\(upload): \(error)")
                    continue
                }
            }
            report.purged.append(upload)
        }
    }
}
