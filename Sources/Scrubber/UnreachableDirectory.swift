import Distribution
import StorageDriver

/// How a scrub words a directory it could not enter. The scrub reports it as one problem
/// and goes on with the next entry, so that one bad directory never hides the rest of the store
/// and never lets what lies below it pass as intact.
enum UnreachableDirectory {
    /// Why opening or listing a directory failed.
    static func reason(_ error: any Error) -> String {
        switch error as? StorageDriverError {
        case .symlinkRefused?: "a symbolic link, or behind one (never followed)"
        case .pathNotFound?: "not a directory"  // ENOTDIR: the driver reports it as not found
        default: "cannot be read: \(error)"
        }
    }

    /// What a listed entry is that should have been a directory but is not: the symbolic link a
    /// store must not have is named as such.
    static func reason(ofEntry name: String, kind: FileKind, in directory: any DriverDirectory) -> String {
        if kind == .file { return "a file, not a directory" }
        do {
            _ = try directory.stat(name)
        } catch StorageDriverError.symlinkRefused {
            return "a symbolic link (never followed)"
        } catch {
            return "cannot be read: \(error)"
        }
        return "not a directory (a FIFO, socket or device)"
    }

    /// The problem for `path`: `reason`, then what was left unchecked because of it.
    static func problem(
        _ path: DriverPath, repository: RepositoryName? = nil, digest: Digest? = nil, reason: String, unchecked: String
    ) -> StoreProblem {
        StoreProblem(kind: .unreachable, path: path, repository: repository, digest: digest, detail: "\(reason): \(unchecked)")
    }
}
