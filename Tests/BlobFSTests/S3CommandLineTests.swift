import Foundation
import Glibc
import S3
import Testing
import TestSupport

@testable import blobfs

/// The S3 parts of the command line that need no server: `storage.s3`, the `s3://` argument,
/// `-o s3_…`, and where credentials come from.
@Suite struct S3CommandLineTests {
    @Test func readsTheRegistrysS3Section() throws {
        let configuration = try RegistryConfiguration.parse(
            """
            version: 0.1
            storage:
              s3:
                accesskey: AKIDEXAMPLE
                secretkey: wJalrXUtnFEMI
                region: eu-west-1
                regionendpoint: minio.internal:9000
                bucket: registry
                rootdirectory: /registry
                secure: false
                v4auth: true
                chunksize: 10485760
                forcepathstyle: true
                loglevel: debug
                multipartcopymaxconcurrency: 100
              redirect:
                disable: true
              cache:
                blobdescriptor: inmemory
            """, source: "config.yml")
        let s3 = try #require(configuration.s3)
        #expect(s3.bucket == "registry" && s3.rootDirectory == "/registry" && s3.region == "eu-west-1")
        #expect(s3.accessKey == "AKIDEXAMPLE" && s3.secretKey == "wJalrXUtnFEMI" && !s3.secure && s3.chunkSize == 10 << 20)
        #expect(configuration.cache == .inMemory(size: nil))

        let settings = try S3StoreSettings.resolve(argument: nil, options: (try S3StoreOptions.parse([])), configuration: s3, environment: [:])
        #expect(settings.endpoint == "http://minio.internal:9000", "secure: false makes a bare host http")
        #expect(settings.location == "s3://registry/registry")
        #expect(settings.credentials == S3Credentials(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI"))
        #expect(settings.tuning.partSize == 10 << 20)
    }

    /// What blobfs cannot honour is refused with the key named, on one line.
    @Test(arguments: [
        ("v4auth: false", "storage.s3.v4auth"),
        ("encrypt: true", "storage.s3.encrypt"),
        ("keyid: k", "storage.s3.keyid"),
        ("skipverify: true", "storage.s3.skipverify"),
        ("storageclass: REDUCED_REDUNDANCY", "storage.s3.storageclass"),
        ("objectacl: public-read", "storage.s3.objectacl"),
        ("chunksize: 1000", "storage.s3.chunksize"),
        ("secure: maybe", "storage.s3.secure"),
        ("accesskey: a", "storage.s3.secretkey"),
    ]) func refusesWhatItCannotHonourNamingTheKey(line: String, key: String) {
        let text = "storage:\n  s3:\n    bucket: b\n    \(line)\n"
        do {
            let parsed = try RegistryConfiguration.parse(text, source: "c.yml")
            Issue.record("\(line) was accepted: \(parsed)")
        } catch {
            #expect(error.message.hasPrefix("c.yml: ") && error.message.contains(key), "\(line): \(error.message)")
            #expect(!error.message.contains("\n"))
        }
        #expect(throws: CommandFailure.self) { try RegistryConfiguration.parse("storage: {s3: {region: r}}", source: "c") }
    }

    @Test func parsesTheStoreArgumentAndTheOptions() throws {
        let nested = try S3StoreSettings.parse("s3://bucket/registry/root")
        #expect(nested.bucket == "bucket" && nested.rootDirectory == "/registry/root")
        let bare = try S3StoreSettings.parse("s3://bucket")
        #expect(bare.bucket == "bucket" && bare.rootDirectory == "")
        #expect(throws: CommandFailure.self) { try S3StoreSettings.parse("s3:///root") }
        let list = try MountOptionList(parsing: ["ro,s3_endpoint=http://127.0.0.1:9000,s3_region=eu-central-1", "s3_credentials_file=/etc/blobfs/aws"])
        let options = (try S3StoreOptions.parse([])).overlaid(on: list)
        #expect(options.endpoint == "http://127.0.0.1:9000" && options.region == "eu-central-1" && options.credentialsFile == "/etc/blobfs/aws")
        let environment = ["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"]
        let flags = try S3StoreOptions.parse(["--s3-endpoint", "https://rgw.example:7480/"])
        let fstab = try MountOptionList(parsing: ["s3_endpoint=http://127.0.0.1:9000,s3_region=eu-central-1"])
        let settings = try S3StoreSettings.resolve(argument: "s3://b/r", options: flags.overlaid(on: fstab), configuration: nil, environment: environment)
        #expect(settings.endpoint == "https://rgw.example:7480" && settings.region == "eu-central-1", "a flag wins over -o")
        let aws = try S3StoreSettings.resolve(argument: "s3://b", options: (try S3StoreOptions.parse([])), configuration: nil, environment: environment)
        #expect(aws.endpoint == "https://s3.us-east-1.amazonaws.com" && aws.region == "us-east-1")
        #expect(throws: CommandFailure.self) {
            try S3StoreSettings.resolve(
                argument: "s3://b", options: try S3StoreOptions.parse(["--s3-endpoint", "http://host/path"]), configuration: nil,
                environment: environment)
        }
    }

    /// Environment first, then the shared file with AWS_PROFILE; an explicit file wins over both;
    /// a credentials file others can read is refused as the Redis password file is.
    @Test func findsCredentialsWhereTheAWSToolsLook() throws {
        let directory = try TemporaryDirectory(prefix: "blobfs-s3-credentials")
        defer { directory.remove() }
        let home = directory.path
        try Posix.makeDirectory(home + "/.aws")
        let shared = home + "/.aws/credentials"
        try Posix.writeFile(
            shared,
            Array("""
                # comment
                [default]
                aws_access_key_id = DEFAULTKEY
                aws_secret_access_key = defaultsecret
                [profile ci]
                AWS_ACCESS_KEY_ID=CIKEY
                aws_secret_access_key=cisecret
                aws_session_token = citoken

                """.utf8))
        chmod(shared, 0o600)
        func credentials(_ environment: [String: String], _ options: S3StoreOptions? = nil) throws -> S3Credentials {
            try S3StoreSettings.resolve(argument: "s3://b", options: options ?? S3StoreOptions.parse([]), configuration: nil, environment: environment).credentials
        }
        #expect(try credentials(["HOME": home]) == S3Credentials(accessKey: "DEFAULTKEY", secretKey: "defaultsecret"))
        #expect(try credentials(["HOME": home, "AWS_PROFILE": "ci"]) == S3Credentials(accessKey: "CIKEY", secretKey: "cisecret", sessionToken: "citoken"))
        #expect(
            try credentials(["HOME": home, "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "t"])
                == S3Credentials(accessKey: "ENVKEY", secretKey: "envsecret", sessionToken: "t"))
        let explicit = try S3StoreOptions.parse(["--s3-credentials-file", shared])
        #expect(try credentials(["AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"], explicit).accessKey == "DEFAULTKEY")
        do {
            _ = try credentials(["HOME": home, "AWS_PROFILE": "nosuch"])
            Issue.record("a missing profile was accepted")
        } catch let error as CommandFailure {
            #expect(error.message.contains("[nosuch]"), "\(error.message)")
        }
        do {
            _ = try credentials(["HOME": home + "/nowhere"])
            Issue.record("no credentials at all was accepted")
        } catch let error as CommandFailure {
            #expect(error.message.hasPrefix("no S3 credentials"), "\(error.message)")
        }
        chmod(shared, 0o644)
        do {
            _ = try credentials([:], explicit)
            Issue.record("a credentials file others can read was accepted")
        } catch let error as CommandFailure {
            #expect(error.message.contains("refusing the S3 credentials file") && error.message.contains("others can read"), "\(error.message)")
        }
    }
}
