import Yams

extension RegistryConfiguration {
    /// `storage.s3` as docker-registry 2.8 reads it: what blobfs uses; what it does not need is
    /// accepted and ignored, as the registry ignores keys it does not know (`loglevel`,
    /// `useragent`, `multipartcopymaxconcurrency`, `forcepathstyle`: blobfs always addresses by
    /// path); what it cannot honour is refused with the key named, rather than doing something
    /// else with the bucket than the registry would.
    struct S3Section: Equatable {
        var accessKey: String?
        var secretKey: String?
        var sessionToken: String?
        var region: String?
        /// `regionendpoint`: the server's URL; a bare host gets a scheme from `secure`.
        var regionEndpoint: String?
        var bucket: String
        /// `rootdirectory` as written ("" for none: keys start at `docker/`).
        var rootDirectory: String = ""
        /// `secure`: https (the default) or http, for an endpoint written without a scheme.
        var secure = true
        /// `chunksize`: the multipart part size of writes (5 MiB at least, as the registry checks).
        var chunkSize: Int?
        /// `multipartcopythresholdsize` and `multipartcopychunksize`: how moves copy.
        var copyThreshold: Int?
        var copyChunkSize: Int?

        /// The smallest part S3 takes (the registry's `minChunkSize`).
        static let minimumChunkSize = 5 << 20

        static func parse(_ node: Node?, source: String) throws(CommandFailure) -> S3Section {
            typealias C = RegistryConfiguration
            guard let node, node.mapping != nil else {
                throw CommandFailure("\(source): storage.s3 must be a mapping of the s3 driver's parameters")
            }
            func text(_ key: String) throws(CommandFailure) -> String? {
                try C.scalarText(node[key], "storage.s3.\(key)", source).flatMap { $0.isEmpty ? nil : $0 }
            }
            func flag(_ key: String) throws(CommandFailure) -> Bool? { try C.boolean(node[key], "storage.s3.\(key)", source) }
            func refuse(_ key: String, _ why: String) -> CommandFailure { CommandFailure("\(source): storage.s3.\(key): \(why)") }

            guard let bucket = try text("bucket") else { throw refuse("bucket", "missing: the s3 driver needs a bucket") }
            var section = S3Section(bucket: bucket)
            section.accessKey = try text("accesskey")
            section.secretKey = try text("secretkey")
            section.sessionToken = try text("sessiontoken")
            if (section.accessKey == nil) != (section.secretKey == nil) {
                throw refuse(section.accessKey == nil ? "accesskey" : "secretkey", "missing: accesskey and secretkey go together")
            }
            section.region = try text("region")
            section.regionEndpoint = try text("regionendpoint")
            section.rootDirectory = try text("rootdirectory") ?? ""
            section.secure = try flag("secure") ?? true
            let large = minimumChunkSize...Int.max
            section.chunkSize = try C.integer(node["chunksize"], "storage.s3.chunksize", source, in: large)
            section.copyChunkSize = try C.integer(node["multipartcopychunksize"], "storage.s3.multipartcopychunksize", source, in: large)
            section.copyThreshold = try C.integer(
                node["multipartcopythresholdsize"], "storage.s3.multipartcopythresholdsize", source, in: 0...(5 << 30))

            if try flag("v4auth") == false { throw refuse("v4auth", "false: blobfs signs only with AWS Signature Version 4") }
            if try flag("encrypt") == true {
                throw refuse("encrypt", "true: blobfs does not ask for server-side encryption of what it writes")
            }
            if try text("keyid") != nil { throw refuse("keyid", "blobfs does not write KMS-encrypted objects") }
            if try flag("skipverify") == true { throw refuse("skipverify", "true: blobfs always verifies the endpoint's TLS certificate") }
            if try flag("accelerate") == true { throw refuse("accelerate", "true: blobfs does not use S3 Transfer Acceleration endpoints") }
            if try flag("usedualstack") == true { throw refuse("usedualstack", "true: give the dual-stack endpoint as regionendpoint") }
            if let storageClass = try text("storageclass"), !["STANDARD", "NONE"].contains(storageClass) {
                throw refuse("storageclass", "\(storageClass): blobfs writes STANDARD objects only")
            }
            if let acl = try text("objectacl"), acl != "private" {
                throw refuse("objectacl", "\(acl): blobfs writes private objects only")
            }
            return section
        }
    }
}
