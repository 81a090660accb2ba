import CCurl
import Foundation

/// Where the bucket is and how patient to be with it.
public struct S3Configuration: Sendable {
    /// `http://host:port` or `https://host`, without a path: requests use path-style addressing
    /// (`<endpoint>/<bucket>/<key>`), which every S3-compatible server accepts.
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var credentials: S3Credentials
    /// The deadline of one request, connection included.
    public var requestTimeout: Duration
    public var connectTimeout: Duration
    /// At most this many tries of one request (the first included) on an outage, a 5xx or SlowDown.
    public var maxAttempts: Int
    /// All tries of one request together end by then, however many are left.
    public var retryBudget: Duration
    /// The first pause between tries; it doubles after each.
    public var initialBackoff: Duration

    public init(
        endpoint: String, region: String = "us-east-1", bucket: String, credentials: S3Credentials,
        requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(5), maxAttempts: Int = 4,
        retryBudget: Duration = .seconds(60), initialBackoff: Duration = .milliseconds(100)
    ) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.bucket = bucket
        self.credentials = credentials
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.maxAttempts = max(1, maxAttempts)
        self.retryBudget = retryBudget
        self.initialBackoff = initialBackoff
    }
}

/// Why an S3 request failed, as the driver needs to tell them apart.
public enum S3Failure: Error, Sendable, CustomStringConvertible {
    /// 404 for the key (NoSuchKey, or a HEAD's bare 404), or an upload that is gone (NoSuchUpload).
    case notFound(code: String)
    /// 403: wrong credentials, a refused signature, no permission.
    case accessDenied(request: String, code: String, message: String)
    /// Any other error answer (including NoSuchBucket, and 5xx once the retries are spent).
    case server(request: String, status: Int, code: String, message: String)
    /// No answer: refused, reset, timed out (after the retries).
    case unreachable(request: String, reason: String, attempts: Int)
    /// The answer's body could not be written where it was to go (a local file: a full disk, an
    /// I/O error); `errno` says why. Not retried: the next try would meet the same disk.
    case localWrite(request: String, errno: Int32)

    public var description: String {
        switch self {
        case .notFound(let code): "not found (\(code))"
        case .accessDenied(let request, let code, let message): "\(request): access denied (\(code): \(message))"
        case .server(let request, let status, let code, let message): "\(request): HTTP \(status) \(code): \(message)"
        case .unreachable(let request, let reason, let attempts): "\(request): no answer after \(attempts) tries: \(reason)"
        case .localWrite(let request, let errno): "\(request): writing the body locally failed: \(String(cString: strerror(errno)))"
        }
    }
}

/// One object as a listing shows it.
struct ListedObject: Sendable {
    var key: String
    var size: Int64
    var modified: Int64
}

/// One page of ListObjectsV2.
struct ListPage: Sendable {
    var objects: [ListedObject]
    /// CommonPrefixes, each ending in the delimiter.
    var prefixes: [String]
    /// The token for the next page; nil on the last.
    var nextToken: String?
}

/// What HEAD tells of an object.
struct ObjectHead: Sendable {
    var size: Int64
    var modified: Int64
    var etag: String
}

/// A small S3 client over libcurl: path-style URLs, SigV4 by libcurl (`CURLOPT_AWS_SIGV4`) with
/// `x-amz-content-sha256` added, pooled keep-alive handles, a deadline on every request, and
/// retries with exponential backoff on outages, 5xx and SlowDown, bounded in count and in time.
/// Synchronous and thread-safe: each call runs on its caller's thread.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    private let transport: CurlTransport

    public init(_ configuration: S3Configuration) {
        self.configuration = configuration
        transport = CurlTransport(
            region: configuration.region, credentials: configuration.credentials,
            connectTimeoutMilliseconds: Self.milliseconds(configuration.connectTimeout))
    }

    /// TCP connections opened so far; with keep-alive, far fewer than requests.
    var connectionsOpened: Int { transport.connectionsOpened.load(ordering: .relaxed) }

    // MARK: Buckets (tests and setup)

    /// Creates the bucket (no LocationConstraint: the region is us-east-1's default).
    public func createBucket() throws(S3Failure) {
        _ = try send("PUT", key: nil)
    }

    // MARK: Objects

    /// HEAD of an object; `notFound` if it is absent, 412 if it is not the version `ifMatch`.
    func head(_ key: String, ifMatch: String? = nil) throws(S3Failure) -> ObjectHead {
        let response = try send("HEAD", key: key, headers: ifMatch.map { [("If-Match", $0)] } ?? [])
        return ObjectHead(
            size: Int64(response.headers["content-length"] ?? "") ?? 0,
            modified: S3Encoding.epochSeconds(httpDate: response.headers["last-modified"] ?? ""),
            etag: response.headers["etag"] ?? "")
    }

    /// The whole object, or `.tooLarge(size)` if it holds more than `limit` bytes (the transfer
    /// is abandoned there).
    func get(_ key: String, limit: Int) throws(S3Failure) -> GetResult {
        let response = try send("GET", key: key, bodyLimit: limit)
        if response.bodyTooLong {
            return .tooLarge(Int64(response.headers["content-length"] ?? "") ?? Int64(limit) + 1)
        }
        return .content(response.body)
    }

    enum GetResult: Sendable {
        case content([UInt8])
        case tooLarge(Int64)
    }

    /// Bytes `first...last` of an object (an explicit end byte: the server streams no more than
    /// asked), the object's whole size from Content-Range and its ETag; nil when `first` is at or
    /// past the end (416 InvalidRange). With `ifMatch`, only that version is read: another one
    /// fails with 412 PreconditionFailed.
    func getRange(_ key: String, first: Int64, last: Int64, ifMatch: String? = nil) throws(S3Failure) -> RangeAnswer? {
        var headers = [("Range", "bytes=\(first)-\(last)")]
        if let ifMatch { headers.append(("If-Match", ifMatch)) }
        let response = try send("GET", key: key, headers: headers, accepting: [416])
        if response.status == 416 { return nil }
        let etag = response.headers["etag"] ?? ""
        // `Content-Range: bytes 0-99/1234`; a 200 (a server that ignored the range) is the whole object.
        let total = response.headers["content-range"].flatMap { $0.split(separator: "/").last.flatMap { Int64($0) } }
        if response.status == 200 {
            let size = Int64(response.body.count)
            let start = Int(min(first, size))
            let end = Int(min(last + 1, size))
            return RangeAnswer(bytes: Array(response.body[start..<end]), objectSize: size, etag: etag)
        }
        return RangeAnswer(bytes: response.body, objectSize: total ?? first + Int64(response.body.count), etag: etag)
    }

    /// Bytes `first..<first + destination.count` of an object, written by libcurl straight into
    /// `destination` (one copy, from libcurl's receive buffer; no body buffer of our own): how
    /// many landed, the object's whole size and its ETag; nil when `first` is at or past the end
    /// (416). The answer's Content-Range must name exactly the bytes that came, starting at
    /// `first`: anything else (a server that shifted the range, a body of another length than it
    /// announced) is an error, never bytes written at the wrong place. A 200 (a server that
    /// ignored the range) is the whole object, copied from its body.
    func getRange(_ key: String, first: Int64, into destination: UnsafeMutableRawBufferPointer, ifMatch: String? = nil) throws(S3Failure) -> RangeInto? {
        try getRange(key, first: first, into: .memory(destination), ifMatch: ifMatch)
    }

    /// The same, the bytes written into the local file `descriptor` at `offset` as they arrive.
    func getRange(
        _ key: String, first: Int64, count: Int, intoFile descriptor: Int32, at offset: Int64, ifMatch: String? = nil
    ) throws(S3Failure) -> RangeInto? {
        try getRange(key, first: first, into: .file(descriptor: descriptor, offset: offset, count: count), ifMatch: ifMatch)
    }

    private func getRange(_ key: String, first: Int64, into destination: BodyDestination, ifMatch: String?) throws(S3Failure) -> RangeInto? {
        precondition(destination.count > 0, "a ranged GET of no bytes")
        let last = first + Int64(destination.count) - 1
        var headers = [("Range", "bytes=\(first)-\(last)")]
        if let ifMatch { headers.append(("If-Match", ifMatch)) }
        let response = try send("GET", key: key, headers: headers, accepting: [416], into: destination)
        if response.status == 416 { return nil }
        let etag = response.headers["etag"] ?? ""
        let name = requestName("GET", key)
        if response.status == 200 {
            let size = Int64(response.body.count)
            let start = Int(min(first, size))
            let end = Int(min(last + 1, size))
            let failed = response.body[start..<end].withUnsafeBytes { destination.write($0, at: 0) }
            if let failed { throw .localWrite(request: name, errno: failed) }
            return RangeInto(count: end - start, objectSize: size, etag: etag)
        }
        guard !response.bodyTooLong else {
            throw .server(request: name, status: response.status, code: "InvalidRange", message: "more bytes than the \(destination.count) asked for")
        }
        let range = response.headers["content-range"] ?? ""
        guard let total = Self.objectSize(contentRange: range, first: first, last: last, received: response.bodyInDestination) else {
            throw .server(
                request: name, status: response.status, code: "InvalidRange",
                message: "Content-Range \"\(range)\" with \(response.bodyInDestination) bytes for bytes=\(first)-\(last)")
        }
        return RangeInto(count: response.bodyInDestination, objectSize: total, etag: etag)
    }

    /// The object's size from a 206's `Content-Range: bytes <from>-<to>/<size>`, when it names
    /// exactly the `received` bytes from `first`, within `first...last`; nil for anything else
    /// (a shifted or longer range, a length other than what came, an unknown size `*`).
    static func objectSize(contentRange: String, first: Int64, last: Int64, received: Int) -> Int64? {
        let fields = contentRange.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == "/" })
        guard fields.count == 4, fields[0] == "bytes", let from = Int64(fields[1]), let to = Int64(fields[2]),
            let total = Int64(fields[3]), from == first, to - from + 1 == Int64(received), to <= last, to < total
        else { return nil }
        return total
    }

    struct RangeInto: Sendable {
        /// Bytes written at the start of the destination: all of it unless the object ends first.
        var count: Int
        var objectSize: Int64
        var etag: String
    }

    struct RangeAnswer: Sendable {
        var bytes: [UInt8]
        var objectSize: Int64
        var etag: String
    }

    /// PutObject.
    func put(_ key: String, _ content: [UInt8]) throws(S3Failure) {
        _ = try send("PUT", key: key, headers: [("Content-Type", "application/octet-stream")], body: content)
    }

    /// CopyObject within the bucket (up to 5 GiB).
    func copy(from source: String, to destination: String) throws(S3Failure) {
        let response = try send("PUT", key: destination, headers: [("x-amz-copy-source", copySource(source))])
        try checkNoErrorInside(response, request: "CopyObject \(destination)")
    }

    /// DeleteObject; S3 answers 204 whether or not the key existed.
    func delete(_ key: String) throws(S3Failure) {
        _ = try send("DELETE", key: key)
    }

    /// DeleteObjects of up to 1,000 keys, quietly; a key that could not be deleted is an error.
    func delete(keys: [String]) throws(S3Failure) {
        precondition(keys.count <= 1000, "DeleteObjects takes at most 1,000 keys")
        let objects = keys.map { "<Object><Key>\(S3Encoding.xmlEscaped($0))</Key></Object>" }.joined()
        let body = Array("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>\(objects)</Delete>".utf8)
        let response = try send(
            "POST", key: nil, query: ["delete": ""],
            headers: [("Content-Type", "application/xml"), ("Content-MD5", S3Encoding.md5Base64(body))], body: body)
        try checkNoErrorInside(response, request: "DeleteObjects")
        if let failed = XMLElement.parse(response.body)?.children("Error").first {
            throw .server(
                request: "DeleteObjects \(failed.text("Key") ?? "")", status: response.status, code: failed.text("Code") ?? "",
                message: failed.text("Message") ?? "")
        }
    }

    /// One page of ListObjectsV2 under `prefix`, grouped by `delimiter` when given.
    func list(prefix: String, delimiter: String?, continuationToken: String?, maxKeys: Int = 1000) throws(S3Failure) -> ListPage {
        var query = ["list-type": "2", "prefix": prefix, "max-keys": String(maxKeys)]
        if let delimiter { query["delimiter"] = delimiter }
        if let continuationToken { query["continuation-token"] = continuationToken }
        let response = try send("GET", key: nil, query: query)
        guard let root = XMLElement.parse(response.body), root.name == "ListBucketResult" else {
            throw .server(request: requestName("GET", nil), status: response.status, code: "MalformedXML", message: "not a ListBucketResult")
        }
        let objects = root.children("Contents").compactMap { element -> ListedObject? in
            guard let key = element.text("Key") else { return nil }
            return ListedObject(
                key: key, size: Int64(element.text("Size") ?? "") ?? 0,
                modified: S3Encoding.epochSeconds(iso8601: element.text("LastModified") ?? ""))
        }
        let prefixes = root.children("CommonPrefixes").compactMap { $0.text("Prefix") }
        let truncated = root.text("IsTruncated") == "true"
        return ListPage(objects: objects, prefixes: prefixes, nextToken: truncated ? root.text("NextContinuationToken") : nil)
    }

    // MARK: Multipart uploads

    /// CreateMultipartUpload; the upload id.
    func createMultipartUpload(_ key: String) throws(S3Failure) -> String {
        let response = try send("POST", key: key, query: ["uploads": ""], headers: [("Content-Type", "application/octet-stream")])
        guard let id = XMLElement.parse(response.body)?.text("UploadId"), !id.isEmpty else {
            throw .server(request: requestName("POST", key), status: response.status, code: "MalformedXML", message: "no UploadId")
        }
        return id
    }

    /// UploadPart; the part's ETag.
    func uploadPart(_ key: String, uploadID: String, number: Int, _ content: [UInt8]) throws(S3Failure) -> String {
        let response = try send(
            "PUT", key: key, query: ["partNumber": String(number), "uploadId": uploadID],
            headers: [("Content-Type", "application/octet-stream")], body: content)
        return response.headers["etag"] ?? ""
    }

    /// UploadPartCopy of bytes `first...last` of `source`; the part's ETag.
    func uploadPartCopy(_ key: String, uploadID: String, number: Int, source: String, first: Int64, last: Int64) throws(S3Failure) -> String {
        let response = try send(
            "PUT", key: key, query: ["partNumber": String(number), "uploadId": uploadID],
            headers: [("x-amz-copy-source", copySource(source)), ("x-amz-copy-source-range", "bytes=\(first)-\(last)")])
        try checkNoErrorInside(response, request: "UploadPartCopy \(key)")
        return XMLElement.parse(response.body)?.text("ETag") ?? ""
    }

    /// CompleteMultipartUpload with the parts' ETags in order: the object appears.
    func completeMultipartUpload(_ key: String, uploadID: String, etags: [String]) throws(S3Failure) {
        let parts = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(S3Encoding.xmlEscaped($0.element))</ETag></Part>" }
        let body = Array("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\(parts.joined())</CompleteMultipartUpload>".utf8)
        let response = try send("POST", key: key, query: ["uploadId": uploadID], headers: [("Content-Type", "application/xml")], body: body)
        try checkNoErrorInside(response, request: "CompleteMultipartUpload \(key)")
    }

    /// AbortMultipartUpload; an upload already gone is fine.
    func abortMultipartUpload(_ key: String, uploadID: String) throws(S3Failure) {
        do {
            _ = try send("DELETE", key: key, query: ["uploadId": uploadID])
        } catch .notFound {
            return
        }
    }

    /// The keys of the uploads in progress under `prefix`, every page (ListMultipartUploads pages
    /// by key and upload id markers, 1,000 uploads a page).
    func multipartUploads(prefix: String) throws(S3Failure) -> [(key: String, uploadID: String)] {
        var uploads: [(key: String, uploadID: String)] = []
        var markers: (key: String, uploadID: String)?
        while true {
            var query = ["uploads": "", "prefix": prefix]
            if let markers {
                query["key-marker"] = markers.key
                query["upload-id-marker"] = markers.uploadID
            }
            let response = try send("GET", key: nil, query: query)
            let root = XMLElement.parse(response.body)
            let page: [(key: String, uploadID: String)] = (root?.children("Upload") ?? []).compactMap { upload in
                guard let key = upload.text("Key"), let id = upload.text("UploadId") else { return nil }
                return (key, id)
            }
            uploads += page
            guard root?.text("IsTruncated") == "true", let nextKey = root?.text("NextKeyMarker"), !nextKey.isEmpty else { return uploads }
            let next = (nextKey, root?.text("NextUploadIdMarker") ?? "")
            // A server that hands back the same markers would page forever.
            if let markers, markers == next { return uploads }
            markers = next
        }
    }

    // MARK: Preflight

    /// HEAD of the bucket: returns when it exists and the credentials may use it; `notFound` when
    /// there is no such bucket, `accessDenied` for refused credentials, `unreachable` for no answer.
    public func headBucket() throws(S3Failure) {
        _ = try send("HEAD", key: nil)
    }

    /// Whether any key starts with `prefix`: one ListObjectsV2 of at most one key.
    public func containsKeys(prefix: String) throws(S3Failure) -> Bool {
        let page = try list(prefix: prefix, delimiter: nil, continuationToken: nil, maxKeys: 1)
        return !page.objects.isEmpty || !page.prefixes.isEmpty
    }

    // MARK: The exchange

    /// `x-amz-copy-source`: the bucket and key, URI-encoded.
    private func copySource(_ key: String) -> String {
        "/" + S3Encoding.uri(configuration.bucket, keepSlash: false) + "/" + S3Encoding.uri(key, keepSlash: true)
    }

    private func url(_ key: String?, query: [String: String]) -> String {
        var url = configuration.endpoint + "/" + S3Encoding.uri(configuration.bucket, keepSlash: false)
        if let key { url += "/" + S3Encoding.uri(key, keepSlash: true) }
        if !query.isEmpty { url += "?" + S3Encoding.query(query) }
        return url
    }

    /// How errors name a request: the verb and the URL without its query, so the endpoint is in it.
    private func requestName(_ method: String, _ key: String?) -> String {
        "S3 \(method) \(url(key, query: [:]))"
    }

    /// One request with its retries; a 2xx (or a status in `accepting`) comes back, anything else
    /// is thrown as its `S3Failure`.
    private func send(
        _ method: String, key: String?, query: [String: String] = [:], headers: [(String, String)] = [], body: [UInt8] = [],
        bodyLimit: Int = .max, accepting: Set<Int> = [], into destination: BodyDestination? = nil
    ) throws(S3Failure) -> HTTPResponse {
        var request = HTTPRequest(
            method: method, url: url(key, query: query),
            headers: headers.map { (name: $0.0, value: $0.1) }
                + [(name: "x-amz-content-sha256", value: body.isEmpty ? S3Encoding.emptySHA256 : S3Encoding.sha256Hex(body))],
            body: body, bodyLimit: bodyLimit)
        // UploadPartCopy's range header: libcurl 7.88 would sign it out of order (S3SigV4).
        if S3SigV4.curlMissorts(request.headers) {
            request.headers += S3SigV4.signatureHeaders(
                method: method, url: request.url, headers: request.headers, region: configuration.region, credentials: configuration.credentials)
        }
        let name = requestName(method, key)
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.retryBudget
        var backoff = configuration.initialBackoff
        var attempt = 0
        while true {
            attempt += 1
            let remaining = deadline - clock.now
            let timeout = min(configuration.requestTimeout, remaining)
            let failure: S3Failure
            // A retry writes the destination again from its start.
            switch transport.perform(request, timeoutMilliseconds: Self.milliseconds(timeout), into: destination) {
            case .success(let response):
                if let failed = response.destinationErrno { throw .localWrite(request: name, errno: failed) }
                if (200..<300).contains(response.status) || accepting.contains(response.status) {
                    return response
                }
                failure = Self.failure(response, request: name)
                guard Self.isRetryable(response) else { throw failure }
            case .failure(let transportFailure):
                let reason = transportFailure.timedOut
                    ? "timed out after \(Self.milliseconds(timeout)) ms (\(transportFailure.message))" : transportFailure.message
                failure = .unreachable(request: name, reason: reason, attempts: attempt)
            }
            // Full jitter: a pause anywhere up to the current backoff, so that many threads
            // retrying together spread out.
            let pause = backoff * Double.random(in: 0.5...1.0)
            guard attempt < configuration.maxAttempts, clock.now + pause < deadline - .milliseconds(10) else { throw failure }
            Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) * 1e-18)
            backoff *= 2
        }
    }

    /// 5xx (500, 502, 503 SlowDown, 504) are worth another try; other answers are final.
    private static func isRetryable(_ response: HTTPResponse) -> Bool {
        response.status >= 500
    }

    private static func failure(_ response: HTTPResponse, request: String) -> S3Failure {
        let error = XMLElement.parse(response.body)
        let code = error?.text("Code") ?? ""
        let message = error?.text("Message") ?? ""
        switch response.status {
        case 404 where code != "NoSuchBucket": return .notFound(code: code.isEmpty ? "404" : code)
        case 403: return .accessDenied(request: request, code: code.isEmpty ? "403" : code, message: message)
        default: return .server(request: request, status: response.status, code: code, message: message)
        }
    }

    /// CopyObject, UploadPartCopy and CompleteMultipartUpload may answer 200 with an `<Error>`
    /// document when they fail after the status was sent.
    private func checkNoErrorInside(_ response: HTTPResponse, request: String) throws(S3Failure) {
        guard let root = XMLElement.parse(response.body), root.name == "Error" else { return }
        throw .server(request: request, status: response.status, code: root.text("Code") ?? "", message: root.text("Message") ?? "")
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let parts = duration.components
        return max(0, Int(parts.seconds) * 1000 + Int(parts.attoseconds / 1_000_000_000_000_000))
    }
}
