/// The registry's `storage.s3` section for a test: a bucket on a local server over plain HTTP,
/// path-style (2.8.2 addresses by path whenever `regionendpoint` is set), redirects off so that
/// blob GETs are answered by the registry itself (s3.md, G2 and G3).
public struct RegistryS3Storage: Sendable {
    public var endpoint: String
    public var bucket: String
    /// `/registry`-style; keys then start with `registry/docker/registry/v2/`.
    public var rootDirectory: String
    public var accessKey: String
    public var secretKey: String
    public var region: String

    public init(endpoint: String, bucket: String, rootDirectory: String, accessKey: String, secretKey: String, region: String = "us-east-1") {
        self.endpoint = endpoint
        self.bucket = bucket
        self.rootDirectory = rootDirectory
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = region
    }

    /// The lines below `storage:`, indented from there.
    public var yamlLines: [String] {
        [
            "s3:",
            "  accesskey: \(quoted(accessKey))",
            "  secretkey: \(quoted(secretKey))",
            "  region: \(quoted(region))",
            "  regionendpoint: \(quoted(endpoint))",
            "  bucket: \(quoted(bucket))",
            "  rootdirectory: \(quoted(rootDirectory))",
            "  secure: false",
            "  v4auth: true",
            "redirect:",
            "  disable: true",
        ]
    }
}
