import S3
import Storage
import StorageDriver

extension Preflight {
    /// The deadlines of the preflight's requests: a wrong endpoint must stop the command in
    /// seconds, not after the mount's own, more patient, retries.
    static let s3PreflightConfiguration = (request: Duration.seconds(5), connect: Duration.seconds(3), attempts: 2, budget: Duration.seconds(8))

    /// The store in a bucket, checked with two short requests before anything is mounted: a HEAD
    /// of the bucket (the endpoint answers, the credentials are accepted, the bucket exists), then
    /// a one-key listing of `<root>/docker/registry/v2/` (a registry is there). With
    /// `acceptsEmpty` (a read-write mount), an empty root is a fresh store; a root holding other
    /// keys and no registry is refused, as a directory is: most likely the wrong prefix.
    static func s3Store(_ settings: S3StoreSettings, acceptsEmpty: Bool = false) throws(CommandFailure) -> Store {
        let limits = s3PreflightConfiguration
        let probe = S3Driver(
            client: S3Client(
                S3Configuration(
                    endpoint: settings.endpoint, region: settings.region, bucket: settings.bucket, credentials: settings.credentials,
                    requestTimeout: limits.request, connectTimeout: limits.connect, maxAttempts: limits.attempts,
                    retryBudget: limits.budget)),
            rootDirectory: settings.rootDirectory)
        let location = settings.location
        func failure(_ error: S3Failure) -> CommandFailure {
            switch error {
            case .unreachable(_, let reason, _):
                CommandFailure("cannot reach the S3 endpoint \(settings.endpoint): \(reason)")
            case .accessDenied(_, let code, let message):
                CommandFailure(
                    "the S3 endpoint \(settings.endpoint) refused the credentials from \(settings.credentialsSource) "
                        + "for bucket \(settings.bucket): \(code)\(message.isEmpty ? "" : ": \(message)")")
            case .notFound, .server(_, 404, "NoSuchBucket", _):
                CommandFailure("there is no bucket \(settings.bucket) at the S3 endpoint \(settings.endpoint)")
            case .server(let request, let status, let code, let message):
                CommandFailure("the S3 endpoint \(settings.endpoint) failed \(request): HTTP \(status) \(code)\(message.isEmpty ? "" : ": \(message)")")
            case .localWrite:
                CommandFailure("\(error)")  // the probe writes no file: only here for completeness
            }
        }
        let hasRegistry: Bool
        let isEmpty: Bool
        do {
            try probe.client.headBucket()
            hasRegistry = try probe.containsKeys(below: DriverPath(PathMapper.rootPrefix))
            isEmpty = hasRegistry ? false : !(try probe.containsKeys(below: nil))
        } catch let error as S3Failure {
            throw failure(error)
        } catch {
            throw CommandFailure(error)
        }
        let driver = S3Driver(
            client: S3Client(
                S3Configuration(endpoint: settings.endpoint, region: settings.region, bucket: settings.bucket, credentials: settings.credentials)),
            rootDirectory: settings.rootDirectory, tuning: settings.tuning)
        if hasRegistry { return Store(root: location, driver: driver, isLocal: false) }
        if acceptsEmpty && isEmpty { return Store(root: location, driver: driver, isFresh: true, isLocal: false) }
        throw CommandFailure(
            "\(location) is not a registry store: no key lies under \(location)/docker/registry/v2/"
                + (isEmpty
                    ? " (nothing is under \(location) at all: a registry writes there when it first stores a blob, and so does a --read-write mount, to restore into)"
                    : " (check the bucket and storage.s3.rootdirectory)"))
    }

    /// The store an argument names: `s3://…` (with the S3 options and `storage.s3`) or a directory.
    static func store(
        _ argument: String?, s3 options: S3StoreOptions, configuration: RegistryConfiguration?, acceptsEmpty: Bool = false
    ) throws(CommandFailure) -> Store {
        if let argument, !S3StoreSettings.isS3(argument) || argument.isEmpty {
            if options.anySet { throw .usage("--s3-endpoint, --s3-region and --s3-credentials-file need an s3:// store") }
            return try store(argument, acceptsEmpty: acceptsEmpty)
        }
        let settings = try S3StoreSettings.resolve(argument: argument, options: options, configuration: configuration?.s3)
        return try s3Store(settings, acceptsEmpty: acceptsEmpty)
    }
}
