import Foundation

/// What the S3 suites need from a local S3 server, so that one suite runs on moto (fast, checks
/// no signatures) and on radosgw (checks SigV4 as AWS does, real multipart and ETag semantics)
/// without copies: where it is, its test bucket, the credentials, and signed requests to look at
/// the bucket directly.
public protocol S3TestServer: AnyObject, Sendable {
    /// `moto` or `radosgw`, for test names and messages.
    var name: String { get }
    /// `http://127.0.0.1:<port>`.
    var endpoint: String { get }
    var port: Int { get }
    /// The bucket the server was set up with; tests work under prefixes of their own in it.
    var bucket: String { get }
    var accessKey: String { get }
    var secretKey: String { get }
    var region: String { get }
}

/// The credentials and region a request is signed for.
struct S3Signing: Sendable {
    var accessKey: String
    var secretKey: String
    var region: String
}

extension S3TestServer {
    var signing: S3Signing { S3Signing(accessKey: accessKey, secretKey: secretKey, region: region) }

    /// A request signed with this server's credentials. `path` is the URI-encoded path
    /// (`/<bucket>/<key>`); `query` is sorted and encoded here, as SigV4 wants it.
    public func signedRequest(
        _ method: String, path: String, query: [(String, String)] = [], headers: [String: String] = [:], body: [UInt8]? = nil
    ) throws -> HTTPResponse {
        let url = endpoint + path + (query.isEmpty ? "" : "?" + S3TestQuery.canonical(query))
        return try Curl(maxSeconds: 60, signing: signing).perform(method: method, url: url, headers: headers, body: body)
    }

    /// Creates `bucket` on this server (signed: radosgw refuses anonymous requests).
    public func createBucket(_ bucket: String) throws {
        let created = try signedRequest("PUT", path: "/" + S3TestQuery.encode(bucket))
        guard created.status == 200 else { throw TestSupportError("creating bucket \(bucket) on \(name): HTTP \(created.status) \(created.text)") }
    }

    /// Every key under `prefix` in `bucket` (this server's by default), through every page of a
    /// signed ListObjectsV2: the prefix and continuation tokens carry `/`, which must be sent
    /// and signed as `%2F`.
    public func keys(prefix: String, bucket: String? = nil, pageSize: Int = 1000) throws -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize))]
            if let token { query.append(("continuation-token", token)) }
            let page = try signedRequest("GET", path: "/" + S3TestQuery.encode(bucket ?? self.bucket), query: query)
            guard page.status == 200 else { throw TestSupportError("listing \(prefix) on \(name): HTTP \(page.status) \(page.text)") }
            keys += S3TestQuery.values(of: "Key", in: page.text)
            token = S3TestQuery.values(of: "IsTruncated", in: page.text).first == "true"
                ? S3TestQuery.values(of: "NextContinuationToken", in: page.text).first : nil
        } while token != nil
        return keys
    }

    /// The keys of the multipart uploads in progress under `prefix` (one page: tests have few).
    public func multipartUploads(prefix: String) throws -> [String] {
        let answer = try signedRequest("GET", path: "/" + S3TestQuery.encode(bucket), query: [("uploads", ""), ("prefix", prefix)])
        guard answer.status == 200 else { throw TestSupportError("listing uploads under \(prefix) on \(name): HTTP \(answer.status) \(answer.text)") }
        return S3TestQuery.values(of: "Key", in: answer.text)
    }

    /// The registry's `storage.s3` section for `rootDirectory` of this server's bucket.
    public func registryStorage(rootDirectory: String) -> RegistryS3Storage {
        RegistryS3Storage(
            endpoint: endpoint, bucket: bucket, rootDirectory: rootDirectory, accessKey: accessKey, secretKey: secretKey, region: region)
    }

    /// An AWS shared credentials file's text with this server's key as the `[default]` profile.
    public var credentialsFileText: String {
        "[default]\naws_access_key_id = \(accessKey)\naws_secret_access_key = \(secretKey)\n"
    }
}

/// The servers a parameterised S3 test runs on; each is started once per test process.
public enum S3ServerKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case moto
    case radosgw

    /// The process's one server of this kind, started on first use.
    public func shared() async throws -> any S3TestServer {
        switch self {
        case .moto: try MotoServer.shared()
        case .radosgw: try await RadosGWServer.shared()
        }
    }

    public var description: String { rawValue }
}

/// SigV4's query and XML details, written for the tests on their own (the suites check the S3
/// client, so they must not borrow its encoding).
public enum S3TestQuery {
    /// AWS URI encoding: `A-Za-z0-9-_.~` stay, every other byte is `%XX` (a `/` too).
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// Names and values encoded, sorted by name: the canonical query SigV4 signs.
    public static func canonical(_ parameters: [(String, String)]) -> String {
        parameters.map { (encode($0.0), encode($0.1)) }.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// The text of every `<element>` in an S3 XML answer, entities decoded.
    public static func values(of element: String, in xml: String) -> [String] {
        xml.components(separatedBy: "<\(element)>").dropFirst().compactMap { $0.components(separatedBy: "</\(element)>").first }.map {
            $0.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
        }
    }
}
