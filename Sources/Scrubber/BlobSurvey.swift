import Distribution
import StorageDriver

/// A blob's data file found under `blobs/`, to be re-hashed.
struct BlobFile: Sendable {
    var digest: Digest
    var size: Int64

    /// The data file's path relative to `blobs/`.
    var relative: String { "\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)/data" }
}

/// Lists the blob store's data files for the blob phase of a whole-store scrub.
enum BlobSurvey {
    /// Every regular `<alg>/<hex[0:2]>/<hex>/data` below `blobs`, in path order: only a file at
    /// its digest's own path is a blob, since the registry never looks elsewhere. One stat per
    /// blob (for the progress total), no listing of the blob directories themselves.
    /// A directory on the way that cannot be entered (a symbolic link, one that cannot be opened
    /// or listed) goes to `unreachable` and the survey goes on with its siblings.
    static func files(in blobs: any DriverDirectory, unreachable: (StoreProblem) -> Void) -> [BlobFile] {
        var files: [BlobFile] = []
        let unhashed = "the blobs below it were not re-hashed"
        guard let algorithms = entries(of: blobs, unhashed, unreachable) else { return files }
        for algorithmEntry in algorithms {
            guard let algorithm = DigestAlgorithm(rawValue: algorithmEntry.name),
                let algorithmDirectory = subdirectory(algorithmEntry, of: blobs, unhashed, unreachable),
                let prefixes = entries(of: algorithmDirectory, unhashed, unreachable)
            else { continue }
            for prefixEntry in prefixes where isHexPrefix(prefixEntry.name) {
                guard let prefixDirectory = subdirectory(prefixEntry, of: algorithmDirectory, unhashed, unreachable),
                    let blobEntries = entries(of: prefixDirectory, unhashed, unreachable)
                else { continue }
                for blobEntry in blobEntries {
                    guard blobEntry.name.utf8.prefix(2).elementsEqual(prefixEntry.name.utf8),
                        let digest = try? Digest(parsing: "\(algorithm.rawValue):\(blobEntry.name)")
                    else { continue }
                    guard blobEntry.kind == .directory else {
                        if let path = try? prefixDirectory.path.appending(blobEntry.name) {
                            let reason = UnreachableDirectory.reason(ofEntry: blobEntry.name, kind: blobEntry.kind, in: prefixDirectory)
                            unreachable(UnreachableDirectory.problem(path, digest: digest, reason: reason, unchecked: "the blob was not re-hashed"))
                        }
                        continue
                    }
                    do {
                        let info = try prefixDirectory.stat(blobEntry.name + "/data")
                        if info.kind == .file { files.append(BlobFile(digest: digest, size: info.size)) }
                    } catch StorageDriverError.pathNotFound, StorageDriverError.symlinkRefused {
                        continue  // no data, or a link: not a blob; a link that names it reports it
                    } catch {
                        // Its link reports what it cannot read; a blob nothing links is still one.
                        files.append(BlobFile(digest: digest, size: 0))
                    }
                }
            }
        }
        return files
    }

    /// A two-digit lowercase hex directory name: the only prefix the registry uses.
    private static func isHexPrefix(_ name: String) -> Bool {
        name.utf8.count == 2 && name.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The entries of `directory`, or nil (and a problem) if it cannot be listed.
    private static func entries(
        of directory: any DriverDirectory, _ unchecked: String, _ unreachable: (StoreProblem) -> Void
    ) -> [DirectoryEntry]? {
        do {
            return try directory.entries()
        } catch {
            unreachable(UnreachableDirectory.problem(directory.path, reason: UnreachableDirectory.reason(error), unchecked: unchecked))
            return nil
        }
    }

    /// A child directory held open; nil if it went away since it was listed, or (with a problem)
    /// if it is not a directory one can enter.
    private static func subdirectory(
        _ entry: DirectoryEntry, of directory: any DriverDirectory, _ unchecked: String, _ unreachable: (StoreProblem) -> Void
    ) -> (any DriverDirectory)? {
        guard let path = try? directory.path.appending(entry.name) else { return nil }
        guard entry.kind == .directory else {
            let reason = UnreachableDirectory.reason(ofEntry: entry.name, kind: entry.kind, in: directory)
            unreachable(UnreachableDirectory.problem(path, reason: reason, unchecked: unchecked))
            return nil
        }
        do {
            return try directory.directory(entry.name)
        } catch StorageDriverError.pathNotFound {
            return nil
        } catch {
            unreachable(UnreachableDirectory.problem(path, reason: UnreachableDirectory.reason(error), unchecked: unchecked))
            return nil
        }
    }
}
