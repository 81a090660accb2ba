import ArgumentParser

/// The options of a store in a bucket (`s3://<bucket>/<rootdirectory>`), shared by `mount`,
/// `verify` and `purge-uploads`; `mount` also takes them as `-o s3_endpoint=…` for fstab.
struct S3StoreOptions: ParsableArguments {
    @Option(
        name: .customLong("s3-endpoint"),
        help: ArgumentHelp(
            "The S3 server's URL, e.g. http://127.0.0.1:9000 (MinIO, Ceph RGW); requests address the bucket by path. "
                + "(default: storage.s3.regionendpoint, else https://s3.<region>.amazonaws.com)",
            valueName: "url"))
    var endpoint: String?

    @Option(
        name: .customLong("s3-region"),
        help: ArgumentHelp("The region requests are signed for. (default: storage.s3.region, else us-east-1)", valueName: "region"))
    var region: String?

    @Option(
        name: .customLong("s3-credentials-file"),
        help: ArgumentHelp(
            "An AWS credentials file (INI, the format of ~/.aws/credentials) to take the profile AWS_PROFILE (default: "
                + "default) from, instead of storage.s3.accesskey/secretkey, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                + "~/.aws/credentials. A regular file of the daemon's user that nobody else can read or write.",
            valueName: "file"))
    var credentialsFile: String?

    /// These, overlaid on the `-o` forms (a flag wins over the same `-o` option).
    func overlaid(on list: MountOptionList) -> S3StoreOptions {
        var merged = self
        merged.endpoint = endpoint ?? list.s3Endpoint
        merged.region = region ?? list.s3Region
        merged.credentialsFile = credentialsFile ?? list.s3CredentialsFile
        return merged
    }

    /// Whether any is set: they mean nothing for a store in a directory.
    var anySet: Bool { endpoint != nil || region != nil || credentialsFile != nil }
}
