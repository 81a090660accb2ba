import Distribution
import Logging
import Storage

/// The filesystem: `repo/<name>/blobs/<digest>` over a registry's storage, served to FUSE.
public final class BlobFileSystem: Sendable {
    public let registry: Registry
    public let options: MountOptions
    let logger: Logger

    public init(registry: Registry, options: MountOptions, logger: Logger = Logger(label: "blobfs.fs")) {
        self.registry = registry
        self.options = options
        self.logger = logger
    }
}
