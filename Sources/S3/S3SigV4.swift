import CCrypto
import Foundation

/// AWS Signature V4 for the one kind of request libcurl 7.88 signs wrongly: libcurl sorts the
/// signed headers as whole `name:value` lines, so a header whose name is a prefix of another's
/// lands after it (`x-amz-copy-source-range` before `x-amz-copy-source`: `-` sorts before `:`),
/// and a server that checks signatures (radosgw, AWS) refuses UploadPartCopy with a range as
/// SignatureDoesNotMatch; libcurl 8.x sorts by name. Such a request is signed here, by name, and
/// libcurl leaves a request that carries its own `Authorization` unsigned. Every other request
/// keeps libcurl's signing.
enum S3SigV4 {
    /// Whether libcurl 7.88 would sort these headers out of SigV4's order: some name is a
    /// proper prefix of another.
    static func curlMissorts(_ headers: [(name: String, value: String)]) -> Bool {
        let names = headers.map { $0.name.lowercased() }
        return names.contains { name in names.contains { $0 != name && $0.hasPrefix(name) } }
    }

    /// `Authorization` and `x-amz-date` for a request to `url` (its path and query already in
    /// canonical form, as this client builds them) with `headers` (`x-amz-content-sha256`
    /// among them) signed at `date`; `sessionToken`, which the transport adds, is signed too.
    static func signatureHeaders(
        method: String, url: String, headers: [(name: String, value: String)], region: String, credentials: S3Credentials,
        date: Date = Date()
    ) -> [(name: String, value: String)] {
        let timestamp = Self.timestamp(date)
        let day = String(timestamp.prefix(8))
        let (host, path, query) = Self.split(url)
        var signed = headers.map { (name: $0.name.lowercased(), value: $0.value.trimmingCharacters(in: .whitespaces)) }
        signed += [(name: "host", value: host), (name: "x-amz-date", value: timestamp)]
        if let token = credentials.sessionToken { signed.append((name: "x-amz-security-token", value: token)) }
        signed.sort { $0.name < $1.name }
        let signedNames = signed.map(\.name).joined(separator: ";")
        let payloadHash = signed.first { $0.name == "x-amz-content-sha256" }?.value ?? S3Encoding.emptySHA256
        let canonicalRequest = [method, path, query, signed.map { "\($0.name):\($0.value)\n" }.joined(), signedNames, payloadHash]
            .joined(separator: "\n")
        let scope = "\(day)/\(region)/s3/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, S3Encoding.sha256Hex(Array(canonicalRequest.utf8))].joined(separator: "\n")
        var key = Array("AWS4\(credentials.secretKey)".utf8)
        for part in [day, region, "s3", "aws4_request"] { key = hmacSHA256(key: key, Array(part.utf8)) }
        let signature = hmacSHA256(key: key, Array(stringToSign.utf8)).map { String(format: "%02x", $0) }.joined()
        return [
            (name: "x-amz-date", value: timestamp),
            (
                name: "Authorization",
                value: "AWS4-HMAC-SHA256 Credential=\(credentials.accessKey)/\(scope), SignedHeaders=\(signedNames), Signature=\(signature)"
            ),
        ]
    }

    /// `20261206T095012Z`.
    private static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var fields = tm()
        gmtime_r(&seconds, &fields)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", fields.tm_year + 1900, fields.tm_mon + 1, fields.tm_mday, fields.tm_hour, fields.tm_min,
            fields.tm_sec)
    }

    /// The Host header libcurl sends (the port only if it is not the scheme's own), the path and
    /// the query of `url`.
    private static func split(_ url: String) -> (host: String, path: String, query: String) {
        let scheme = url.range(of: "://").map { String(url[..<$0.lowerBound]).lowercased() } ?? "http"
        let rest = url.range(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let pathAndQuery = rest.dropFirst(authority.count)
        let path = pathAndQuery.prefix { $0 != "?" }
        let query = pathAndQuery.dropFirst(path.count).dropFirst()
        var host = String(authority)
        if (scheme == "http" && host.hasSuffix(":80")) || (scheme == "https" && host.hasSuffix(":443")) {
            host = String(host[..<host.lastIndex(of: ":")!])
        }
        return (host, path.isEmpty ? "/" : String(path), String(query))
    }

    /// HMAC-SHA256 (RFC 2104) over CCrypto's SHA256, for keys of at most a block (SigV4's are).
    private static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        precondition(key.count <= 64, "SigV4 keys fit in one SHA-256 block")
        let block = key + [UInt8](repeating: 0, count: 64 - key.count)
        return sha256(block.map { $0 ^ 0x5c } + sha256(block.map { $0 ^ 0x36 } + data))
    }

    private static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBytes { _ = SHA256($0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count, &digest) }
        return digest
    }
}
