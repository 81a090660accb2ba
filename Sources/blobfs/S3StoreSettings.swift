import Glibc
import S3

/// A store in a bucket, resolved from the `s3://` argument, the S3 options (flag, then `-o`), the
/// registry's `storage.s3` and the environment: where it is, how to sign, how to write.
struct S3StoreSettings {
    var endpoint: String
    var region: String
    var bucket: String
    /// The registry's `rootdirectory`, as given ("" or "/" for none).
    var rootDirectory: String
    var credentials: S3Credentials
    /// Where the credentials came from, for messages (never the secret).
    var credentialsSource: String
    var tuning: S3DriverTuning

    static let scheme = "s3://"

    /// Whether a store argument names a bucket.
    static func isS3(_ argument: String) -> Bool { argument.hasPrefix(scheme) }

    /// `s3://<bucket>/<rootdirectory>`: the bucket and the root directory ("" for none).
    static func parse(_ argument: String) throws(CommandFailure) -> (bucket: String, rootDirectory: String) {
        let rest = argument.dropFirst(scheme.count)
        let bucket = String(rest.prefix { $0 != "/" })
        guard !bucket.isEmpty else { throw .usage("\(argument) names no bucket: give s3://<bucket>/<rootdirectory>") }
        return (bucket, String(rest.dropFirst(bucket.count)))
    }

    /// The settings, by these precedences: the argument, then `storage.s3`, for the bucket and
    /// root; the option, then `storage.s3`, then the default, for the endpoint and region; for
    /// the credentials, a credentials file given as an option, then `storage.s3.accesskey`, then
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then
    /// `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials` with `AWS_PROFILE` (as the AWS SDKs
    /// look, an explicit choice first).
    static func resolve(
        argument: String?, options: S3StoreOptions, configuration: RegistryConfiguration.S3Section?,
        environment: [String: String] = currentEnvironment()
    ) throws(CommandFailure) -> S3StoreSettings {
        let location: (bucket: String, rootDirectory: String)
        if let argument {
            location = try parse(argument)
        } else if let configuration {
            location = (configuration.bucket, configuration.rootDirectory)
        } else {
            throw .usage("give s3://<bucket>/<rootdirectory>, or --config with a registry configuration using the s3 driver")
        }
        let region = options.region ?? configuration?.region ?? "us-east-1"
        let endpoint = try endpointURL(options.endpoint, configuration: configuration, region: region)
        let (credentials, source) = try findCredentials(options, configuration, environment)
        var tuning = S3DriverTuning()
        if let configuration {
            tuning = S3DriverTuning(
                partSize: configuration.chunkSize ?? tuning.partSize, readBlockSize: tuning.readBlockSize,
                copyThreshold: configuration.copyThreshold.map(Int64.init) ?? tuning.copyThreshold,
                copyPartSize: configuration.copyChunkSize.map(Int64.init) ?? tuning.copyPartSize)
        }
        return S3StoreSettings(
            endpoint: endpoint, region: region, bucket: location.bucket, rootDirectory: location.rootDirectory, credentials: credentials,
            credentialsSource: source, tuning: tuning)
    }

    /// `s3://<bucket>/<root>` as messages name the store.
    var location: String {
        let root = rootDirectory.split(separator: "/").joined(separator: "/")
        return Self.scheme + bucket + (root.isEmpty ? "" : "/" + root)
    }

    /// The option's URL, else `regionendpoint` (a bare host gets `https://`, or `http://` with
    /// `secure: false`, as the registry's client does), else AWS's regional endpoint.
    private static func endpointURL(_ option: String?, configuration: RegistryConfiguration.S3Section?, region: String) throws(CommandFailure)
        -> String
    {
        let secure = configuration?.secure ?? true
        var url = option ?? configuration?.regionEndpoint ?? "s3.\(region).amazonaws.com"
        if !url.contains("://") { url = (secure ? "https://" : "http://") + url }
        let what = option != nil ? "--s3-endpoint" : configuration?.regionEndpoint != nil ? "storage.s3.regionendpoint" : "the endpoint"
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw .usage("\(what) \(url) is not an http:// or https:// URL")
        }
        let afterScheme = url.drop { $0 != ":" }.dropFirst(3)
        let host = afterScheme.prefix { $0 != "/" }
        guard !host.isEmpty, afterScheme.dropFirst(host.count).allSatisfy({ $0 == "/" }) else {
            throw .usage("\(what) \(url) must be a server's URL without a path (the bucket goes in s3://<bucket>/…)")
        }
        return String(url.prefix(url.count - afterScheme.count + host.count))
    }

    private static func findCredentials(
        _ options: S3StoreOptions, _ configuration: RegistryConfiguration.S3Section?, _ environment: [String: String]
    ) throws(CommandFailure) -> (S3Credentials, String) {
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        if let file = options.credentialsFile {
            return (try AWSCredentialsFile.read(file, profile: profile), "the [\(profile)] profile of \(file)")
        }
        if let accessKey = configuration?.accessKey, let secretKey = configuration?.secretKey {
            return (S3Credentials(accessKey: accessKey, secretKey: secretKey, sessionToken: configuration?.sessionToken), "storage.s3.accesskey")
        }
        let accessKey = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secretKey = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let accessKey, let secretKey {
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return (S3Credentials(accessKey: accessKey, secretKey: secretKey, sessionToken: token), "AWS_ACCESS_KEY_ID")
        }
        if (accessKey == nil) != (secretKey == nil) {
            throw CommandFailure("\(accessKey == nil ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") is set without \(accessKey == nil ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY")")
        }
        let shared = environment["AWS_SHARED_CREDENTIALS_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { $0 + "/.aws/credentials" }
        if let shared, access(shared, F_OK) == 0 {
            return (try AWSCredentialsFile.read(shared, profile: profile), "the [\(profile)] profile of \(shared)")
        }
        throw CommandFailure(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, write ~/.aws/credentials, "
                + "give --s3-credentials-file, or --config with storage.s3.accesskey and secretkey")
    }

    /// The process's environment.
    static func currentEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return environment
    }
}
