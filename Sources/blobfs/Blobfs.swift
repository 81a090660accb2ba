import ArgumentParser
import Glibc

/// The `blobfs` command: mount a registry's storage, verify it, purge stale uploads.
struct Blobfs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blobfs",
        abstract: "Mount a Docker/OCI registry's storage as files: <mountpoint>/repo/<name>/blobs/<digest>.",
        discussion: """
            blobfs <storage-root> <mountpoint> -o ro[,options] is the form mount(8) uses \
            (mount -t fuse.blobfs, /etc/fstab): it mounts in the background and returns once the \
            mount is ready. See Mount/README.md.
            """,
        version: "0.1.0",
        subcommands: [MountCommand.self, VerifyCommand.self, PurgeUploadsCommand.self, CreateDemoStoreCommand.self]
    )

    /// Subcommand names, to tell them from the mount.fuse form's storage root.
    static var subcommandNames: Set<String> {
        Set(configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"])
    }

    /// Parses and runs a subcommand and exits: 0 on success, 1 with `blobfs: <message>` when a
    /// command fails, 2 for a command line that cannot work (ArgumentParser's own 64 becomes 2).
    static func runAsRoot(_ arguments: [String]) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Glibc.exit(0)
        } catch let failure as CommandFailure {
            writeStandardError("blobfs: \(failure.message)\n")
            Glibc.exit(failure.exitCode)
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                if !text.isEmpty { print(text) }
                Glibc.exit(0)
            }
            if !text.isEmpty { writeStandardError(text + "\n") }
            Glibc.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}
