/// A minimal client for the registry's blob API (v2), driving curl so requests look like any other HTTP client's.
public struct RegistryClient: Sendable {
    /// Like "http://127.0.0.1:5011", without a trailing slash.
    public let baseURL: String
    private let curl = Curl()

    public init(baseURL: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    /// POST to open an upload, then one PUT carrying the whole blob. Returns the PUT's answer (201 expected).
    public func pushMonolithic(repository: String, bytes: [UInt8], digest: String) throws -> HTTPResponse {
        let location = try startUpload(repository: repository)
        return try send("PUT", url: appendingQuery(location, "digest=" + percentEncoded(digest)), headers: octetStream, body: bytes)
    }

    /// POST, one PATCH per chunk (each following the new Location), then a PUT with an empty body.
    /// Returns the PUT's answer (201 expected).
    public func pushChunked(repository: String, bytes: [UInt8], digest: String, chunkSize: Int) throws -> HTTPResponse {
        precondition(chunkSize > 0, "chunkSize must be positive")
        var location = try startUpload(repository: repository)
        var start = 0
        while start < bytes.count {
            let end = min(start + chunkSize, bytes.count)
            var headers = octetStream
            // distribution 2.8.2 wants "<start>-<end>", inclusive, without the "bytes " prefix.
            headers["Content-Range"] = "\(start)-\(end - 1)"
            let response = try send("PATCH", url: location, headers: headers, body: Array(bytes[start..<end]))
            location = try expect(response, 202, "PATCH bytes \(start)-\(end - 1) of \(repository)")
            start = end
        }
        return try send("PUT", url: appendingQuery(location, "digest=" + percentEncoded(digest)), headers: octetStream, body: [])
    }

    /// Cross-repository mount: 201 if the registry linked the blob, 202 if it opened an upload instead.
    public func mount(repository: String, from: String, digest: String) throws -> HTTPResponse {
        try send(
            "POST",
            url: "\(baseURL)/v2/\(repository)/blobs/uploads/?mount=\(percentEncoded(digest))&from=\(percentEncoded(from))",
            headers: [:], body: nil)
    }

    /// HEAD of a blob in a repository.
    public func head(repository: String, digest: String) throws -> HTTPResponse {
        try send("HEAD", url: blobURL(repository, digest), headers: [:], body: nil)
    }

    /// GET of a blob in a repository.
    public func get(repository: String, digest: String) throws -> HTTPResponse {
        try send("GET", url: blobURL(repository, digest), headers: [:], body: nil)
    }

    /// DELETE of a blob's link in a repository (202 expected when delete is enabled).
    public func deleteBlob(repository: String, digest: String) throws -> HTTPResponse {
        try send("DELETE", url: blobURL(repository, digest), headers: [:], body: nil)
    }

    /// Any other request (manifests, catalog, Range reads). `url` may be absolute or a path like "/v2/".
    /// A body is sent as given; set its Content-Type yourself (curl would otherwise say form data).
    public func send(_ method: String, url: String, headers: [String: String] = [:], body: [UInt8]? = nil) throws
        -> HTTPResponse
    {
        try curl.perform(method: method, url: absolute(url), headers: headers, body: body)
    }

    // MARK: - Steps

    private var octetStream: [String: String] { ["Content-Type": "application/octet-stream"] }

    private func blobURL(_ repository: String, _ digest: String) -> String {
        "\(baseURL)/v2/\(repository)/blobs/\(digest)"
    }

    /// POST /v2/<repo>/blobs/uploads/ and return the session's Location (202 expected).
    private func startUpload(repository: String) throws -> String {
        let response = try send("POST", url: "\(baseURL)/v2/\(repository)/blobs/uploads/", headers: [:], body: nil)
        return try expect(response, 202, "POST upload to \(repository)")
    }

    /// Checks the status of an intermediate step and returns its Location.
    private func expect(_ response: HTTPResponse, _ status: Int, _ step: String) throws -> String {
        guard response.status == status else {
            throw TestSupportError("\(step): expected \(status), got \(response.status): \(response.text)")
        }
        guard let location = response.header("Location"), !location.isEmpty else {
            throw TestSupportError("\(step): \(status) without a Location header")
        }
        return absolute(location)
    }

    /// The registry answers with absolute Locations, but a relative one is resolved against baseURL too.
    private func absolute(_ url: String) -> String {
        url.hasPrefix("http://") || url.hasPrefix("https://") ? url : baseURL + (url.hasPrefix("/") ? "" : "/") + url
    }
}

/// Adds a query parameter whether or not the URL already has a query (upload Locations carry `?_state=`).
private func appendingQuery(_ url: String, _ parameter: String) -> String {
    url + (url.contains("?") ? "&" : "?") + parameter
}

/// Percent-encodes everything but RFC 3986 unreserved characters ("sha256:ab" -> "sha256%3Aab", "a/b" -> "a%2Fb").
func percentEncoded(_ value: String) -> String {
    var result = ""
    for byte in value.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            result.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            result += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
        }
    }
    return result
}
