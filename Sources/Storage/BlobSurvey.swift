import Distribution
import StorageDriver

/// A blob's data file found under `blobs/`, to be re-hashed.
struct BlobFile: Sendable {
    var digest: Digest
    var size: Int64

    /// The data file's path relative to `blobs/`.
    var relative: String { "\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)/data" }
}

/// Lists the blob store's data files for the blob phase of a whole-store verification.
enum BlobSurvey {
    /// Every regular `<alg>/<hex[0:2]>/<hex>/data` below `blobs`, in path order: only a file at
    /// its digest's own path is a blob, since the registry never looks elsewhere. One stat per
    /// blob (for the progress total), no listing of the blob directories themselves.
    static func files(in blobs: any DriverDirectory) throws -> [BlobFile] {
        var files: [BlobFile] = []
        for algorithmEntry in try blobs.entries() where algorithmEntry.kind == .directory {
            guard let algorithm = DigestAlgorithm(rawValue: algorithmEntry.name),
                let algorithmDirectory = try subdirectory(algorithmEntry.name, of: blobs)
            else { continue }
            for prefixEntry in try algorithmDirectory.entries() where prefixEntry.kind == .directory {
                guard let prefixDirectory = try subdirectory(prefixEntry.name, of: algorithmDirectory) else { continue }
                for blobEntry in try prefixDirectory.entries() where blobEntry.kind == .directory {
                    guard blobEntry.name.utf8.prefix(2).elementsEqual(prefixEntry.name.utf8),
                        let digest = try? Digest(parsing: "\(algorithm.rawValue):\(blobEntry.name)")
                    else { continue }
                    do {
                        let info = try prefixDirectory.stat(blobEntry.name + "/data")
                        if info.kind == .file { files.append(BlobFile(digest: digest, size: info.size)) }
                    } catch StorageDriverError.pathNotFound, StorageDriverError.symlinkRefused {
                        continue  // no data, or a link: not a blob
                    }
                }
            }
        }
        return files
    }

    /// A child directory, or nil if it went away since it was listed.
    private static func subdirectory(_ name: String, of directory: any DriverDirectory) throws -> (any DriverDirectory)? {
        do {
            return try directory.directory(name)
        } catch StorageDriverError.pathNotFound {
            return nil
        }
    }
}
