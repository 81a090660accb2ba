import Foundation
import S3
import TestSupport

/// S3 drivers for the tests: over the process's shared moto or radosgw, or over any endpoint
/// with the deadlines a test chooses.
enum S3Fixture {
    /// A client of `endpoint`'s `bucket`, signed with `credentials` (moto's test key by default).
    static func client(
        endpoint: String, bucket: String, credentials: S3Credentials = S3Credentials(accessKey: MotoServer.accessKey, secretKey: MotoServer.secretKey),
        region: String = "us-east-1", requestTimeout: Duration = .seconds(30), maxAttempts: Int = 4, retryBudget: Duration = .seconds(60)
    ) -> S3Client {
        S3Client(
            S3Configuration(
                endpoint: endpoint, region: region, bucket: bucket, credentials: credentials,
                requestTimeout: requestTimeout, connectTimeout: min(requestTimeout, .seconds(5)), maxAttempts: maxAttempts,
                retryBudget: retryBudget, initialBackoff: .milliseconds(50)))
    }

    /// A client of `server`'s bucket with its credentials.
    static func client(_ server: any S3TestServer) -> S3Client {
        client(
            endpoint: server.endpoint, bucket: server.bucket, credentials: S3Credentials(accessKey: server.accessKey, secretKey: server.secretKey),
            region: server.region)
    }

    /// A driver under `rootDirectory` of the bucket of the process's server of `kind`.
    static func driver(on kind: S3ServerKind = .moto, rootDirectory: String, tuning: S3DriverTuning = S3DriverTuning()) async throws -> S3Driver {
        S3Driver(client: client(try await kind.shared()), rootDirectory: rootDirectory, tuning: tuning)
    }

    /// A root directory no other test uses.
    static func uniqueRoot(_ name: String) -> String { "/\(name)-\(UUID().uuidString)" }
}
