import Distribution
import Logging
import Storage
import StorageDriver

/// Lists the repositories of a store for a whole-store scrub: as `Registry.repositories()`
/// (a directory under `repositories/` is one iff it holds `_layers`), but a directory that cannot
/// be entered is a problem to report, not the end of the scrub, and a `_layers` that is not a
/// directory still makes a repository, whose check then reports it.
enum RepositorySurvey {
    static func names(driver: any StorageDriver, logger: Logger, unreachable: (StoreProblem) -> Void) -> [RepositoryName] {
        let root = PathMapper.path(.repositoriesRoot)
        let unchecked = "the repositories below it were not checked"
        let top: any DriverDirectory
        do {
            top = try driver.directory(root)
        } catch StorageDriverError.pathNotFound {
            return []  // no repository yet
        } catch {
            unreachable(UnreachableDirectory.problem(root, reason: UnreachableDirectory.reason(error), unchecked: unchecked))
            return []
        }
        var names: [RepositoryName] = []
        func visit(_ directory: any DriverDirectory) {
            let entries: [DirectoryEntry]
            do {
                entries = try directory.entries()
            } catch {
                unreachable(UnreachableDirectory.problem(directory.path, reason: UnreachableDirectory.reason(error), unchecked: unchecked))
                return
            }
            for entry in entries {
                guard let path = try? directory.path.appending(entry.name) else { continue }
                if entry.name.hasPrefix("_") {
                    // `_layers`, `_manifests`, `_uploads`: repository data, never a name component.
                    guard entry.name == "_layers" else { continue }
                    let name = String(directory.path.value.dropFirst(root.value.count + 1))
                    do {
                        names.append(try RepositoryName(name))
                    } catch {
                        logger.warning("skipping a repository with an invalid name", metadata: ["name": "\(name)", "error": "\(error)"])
                    }
                    continue
                }
                switch entry.kind {
                case .directory:
                    do {
                        visit(try directory.directory(entry.name))
                    } catch StorageDriverError.pathNotFound {
                        continue  // removed since it was listed
                    } catch {
                        unreachable(UnreachableDirectory.problem(path, reason: UnreachableDirectory.reason(error), unchecked: unchecked))
                    }
                case .file:
                    continue  // a stray file is no repository
                case .other:
                    // A symbolic link the registry would follow and blobfs does not.
                    let reason = UnreachableDirectory.reason(ofEntry: entry.name, kind: entry.kind, in: directory)
                    unreachable(UnreachableDirectory.problem(path, reason: reason, unchecked: unchecked))
                }
            }
        }
        visit(top)
        return names.sorted()
    }
}
