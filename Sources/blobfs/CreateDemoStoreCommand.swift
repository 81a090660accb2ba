import ArgumentParser
import Glibc
import Storage
import StorageDriver

/// `blobfs create-demo-store` (hidden): writes the demo registry store that `make run` mounts.
struct CreateDemoStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-demo-store",
        abstract: "Write a demo registry store (several repositories, about 100 MiB) into an empty directory.",
        shouldDisplay: false
    )

    @Argument(help: ArgumentHelp("A new or empty directory.", valueName: "directory"))
    var directory: String

    func run() throws {
        bootstrapLogging(level: .warning)
        if mkdir(directory, 0o777) != 0 && errno != EEXIST {
            throw CommandFailure("cannot create \(directory): \(systemError(errno))")
        }
        let root = try Preflight.resolve(directory, what: "directory")
        guard try Preflight.isEmptyDirectory(root) else { throw CommandFailure("\(directory) is not empty") }
        let summary: DemoStore.Summary
        do {
            summary = try DemoStore.write(into: Registry(driver: try FilesystemDriver(root: root)))
        } catch {
            throw CommandFailure(error)
        }
        let repositories = Set(summary.entries.map(\.repository)).count
        print(
            "Demo registry store in \(root): \(repositories) repositories, \(summary.entries.count) blob files "
                + "(\(summary.storedBlobs) distinct blobs, \(formatBytes(summary.storedBytes))), "
                + "\(summary.unfinishedUploads) unfinished upload")
        let width = summary.entries.map(\.repository.value.count).max() ?? 0
        for entry in summary.entries {
            let name = entry.repository.value.padding(to: width)
            print("  \(name)  \(entry.digest)  \(formatBytes(entry.size).padding(to: 9))  \(entry.note)")
        }
        print("Tagged images (repo/<name>/tags/<tag> -> ../manifests/<digest>):")
        for image in summary.images { print("  \(image.reference)  \(image.manifest)") }
    }
}

extension String {
    /// Left-aligned in `width` columns.
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
