import Foundation
import S3
import TestSupport

/// S3 drivers for the tests: over the process's shared moto, or over any endpoint with the
/// deadlines a test chooses.
enum S3Fixture {
    /// A client of `endpoint`'s `bucket`, signed with the test credentials.
    static func client(
        endpoint: String, bucket: String, requestTimeout: Duration = .seconds(30), maxAttempts: Int = 4,
        retryBudget: Duration = .seconds(60)
    ) -> S3Client {
        S3Client(
            S3Configuration(
                endpoint: endpoint, bucket: bucket,
                credentials: S3Credentials(accessKey: MotoServer.accessKey, secretKey: MotoServer.secretKey),
                requestTimeout: requestTimeout, connectTimeout: min(requestTimeout, .seconds(5)), maxAttempts: maxAttempts,
                retryBudget: retryBudget, initialBackoff: .milliseconds(50)))
    }

    /// A driver under `rootDirectory` of the shared server's bucket.
    static func driver(rootDirectory: String, tuning: S3DriverTuning = S3DriverTuning()) throws -> S3Driver {
        let server = try MotoServer.shared()
        return S3Driver(client: client(endpoint: server.endpoint, bucket: server.bucket), rootDirectory: rootDirectory, tuning: tuning)
    }

    /// A root directory no other test uses.
    static func uniqueRoot(_ name: String) -> String { "/\(name)-\(UUID().uuidString)" }
}
