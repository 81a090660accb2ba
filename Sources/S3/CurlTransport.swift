import CCurl
import Foundation
import StorageDriver
import Synchronization

/// One HTTP exchange as the S3 client asks for it: the URL already carries the encoded path and
/// the canonical (sorted, encoded) query, since libcurl 7.88 signs both as written.
struct HTTPRequest: Sendable {
    var method: String
    var url: String
    /// Sent and signed as given (every CURLOPT_HTTPHEADER header is signed).
    var headers: [(name: String, value: String)]
    var body: [UInt8] = []
    /// Stop reading a 2xx body longer than this: the exchange then ends with `bodyTooLong`.
    var bodyLimit: Int = .max
}

/// What came back: status, headers (names lowercased, the last value of each) and the body.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    /// The body was cut at the request's `bodyLimit` (or at the end of the destination it was
    /// written into); the transfer was abandoned.
    var bodyTooLong: Bool
    /// Bytes of a 206 body written into the caller's destination instead of `body`.
    var bodyInDestination: Int = 0
    /// Writing the body into a destination file failed with this errno (the transfer was
    /// abandoned there): a local failure, a full disk, not the server's.
    var destinationErrno: Int32? = nil
}

/// Where a 206 answer's body goes instead of a growing buffer, as libcurl hands it over: memory
/// of the caller's, or a local file at an offset (written in aligned 128 KiB pieces while they
/// are still in the CPU's cache: no buffer of the block's size, no second pass over the bytes).
/// Either holds at most `count` bytes: a longer body ends the exchange with `bodyTooLong`.
enum BodyDestination: @unchecked Sendable {
    case memory(UnsafeMutableRawBufferPointer)
    case file(descriptor: Int32, offset: Int64, count: Int)

    var count: Int {
        switch self {
        case .memory(let buffer): buffer.count
        case .file(_, _, let count): count
        }
    }

    /// Writes `bytes` at `position` of the destination (within `count`); the errno of a failed write.
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int) -> Int32? {
        guard !bytes.isEmpty else { return nil }
        switch self {
        case .memory(let buffer):
            (buffer.baseAddress! + position).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return nil
        case .file(let fd, let offset, _):
            return LocalWrite.failure(writing: bytes, to: fd, at: offset + Int64(position))
        }
    }
}

/// Why an exchange produced no response: libcurl's code and text (a refused connection, a
/// timeout, a reset).
struct TransportFailure: Error, Sendable {
    var code: CURLcode
    var message: String

    var timedOut: Bool { code == CURLE_OPERATION_TIMEDOUT }
}

/// The credentials requests are signed with.
public struct S3Credentials: Sendable, Hashable {
    public var accessKey: String
    public var secretKey: String
    /// A temporary credential's token, sent as `x-amz-security-token`.
    public var sessionToken: String?

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
    }
}

/// libcurl easy handles kept between requests, so that each keeps its connection alive. A handle
/// is taken for one exchange and given back; at most `idleLimit` idle ones are kept. Requests run
/// on the caller's thread (the driver protocol is synchronous), so the pool grows to the number
/// of threads calling at once.
final class CurlTransport: Sendable {
    /// Handles are only ever used by one thread at a time: taken out of `idle` under its lock and
    /// handed back when the exchange is over.
    private struct Handle: @unchecked Sendable { let pointer: UnsafeMutableRawPointer }

    /// The only lock here; nothing else is taken while it is held, and no I/O runs under it.
    private let idle = Mutex<[Handle]>([])
    private let idleLimit: Int
    private let region: String
    private let credentials: S3Credentials
    let connectTimeoutMilliseconds: Int
    /// Connections opened so far (libcurl's CURLINFO_NUM_CONNECTS summed): how well keep-alive works.
    let connectionsOpened = Atomic<Int>(0)

    init(region: String, credentials: S3Credentials, connectTimeoutMilliseconds: Int, idleLimit: Int = 32) {
        _ = Self.globalInit
        self.region = region
        self.credentials = credentials
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.idleLimit = idleLimit
    }

    deinit {
        idle.withLock { handles in
            for handle in handles { curl_easy_cleanup(handle.pointer) }
            handles = []
        }
    }

    private static let emptyBody: StaticString = ""

    /// curl_global_init is not thread-safe: once, before the first handle, through a lazy global.
    private static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Performs one exchange with a deadline of `timeoutMilliseconds` for all of it. With a
    /// `destination`, a 206 answer's body is written straight into it, from its start, as libcurl
    /// hands it over (no growing buffer, no second copy): the response's `body` is then empty and
    /// `bodyInDestination` says how many bytes landed; a body longer than the destination ends
    /// the exchange with `bodyTooLong`. Any other answer (an error, a 200 of a server that ignored
    /// the range) is collected into `body` as without one.
    func perform(
        _ request: HTTPRequest, timeoutMilliseconds: Int, into destination: BodyDestination? = nil
    ) -> Result<HTTPResponse, TransportFailure> {
        let handle = idle.withLock { $0.popLast() } ?? curl_easy_init().map { Handle(pointer: $0) }
        guard let handle else { return .failure(TransportFailure(code: CURLE_FAILED_INIT, message: "curl_easy_init failed")) }
        let result = exchange(request, on: handle.pointer, timeoutMilliseconds: timeoutMilliseconds, into: destination)
        // Reset keeps the live connection and the DNS cache: the next exchange reuses them.
        curl_easy_reset(handle.pointer)
        let kept = idle.withLock { handles in
            guard handles.count < idleLimit else { return false }
            handles.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(handle.pointer) }
        return result
    }

    private func exchange(
        _ request: HTTPRequest, on h: UnsafeMutableRawPointer, timeoutMilliseconds: Int, into destination: BodyDestination?
    ) -> Result<HTTPResponse, TransportFailure> {
        let sink = ResponseSink(limit: request.bodyLimit, destination: destination)
        var headers: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { headers = curl_slist_append(headers, "\(header.name): \(header.value)") }
        if let token = credentials.sessionToken { headers = curl_slist_append(headers, "x-amz-security-token: \(token)") }
        defer { curl_slist_free_all(headers) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = request.body.withUnsafeBytes { body in
            errorBuffer.withUnsafeMutableBufferPointer { errorText in
                ccurl_setopt_string(h, CURLOPT_URL, request.url)
                ccurl_setopt_long(h, CURLOPT_NOSIGNAL, 1)  // threads: no SIGALRM for timeouts
                ccurl_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, timeoutMilliseconds))
                ccurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, max(1, min(connectTimeoutMilliseconds, timeoutMilliseconds)))
                ccurl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
                ccurl_setopt_string(h, CURLOPT_NOPROXY, "*")  // an http_proxy in the environment must not capture the endpoint
                ccurl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorText.baseAddress)
                ccurl_setopt_string(h, CURLOPT_AWS_SIGV4, "aws:amz:\(region):s3")
                // USERNAME/PASSWORD, not USERPWD, which splits at the first colon (Swift's `account:user` keys).
                ccurl_setopt_string(h, CURLOPT_USERNAME, credentials.accessKey)
                ccurl_setopt_string(h, CURLOPT_PASSWORD, credentials.secretKey)
                ccurl_setopt_headers(h, headers)
                switch request.method {
                case "GET": break
                case "HEAD": ccurl_setopt_long(h, CURLOPT_NOBODY, 1)
                default:
                    // A body in memory, with the verb named explicitly (PUT, POST, DELETE).
                    ccurl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
                    if request.method != "DELETE" {
                        // Never a null pointer: libcurl would then read the body from stdin.
                        ccurl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                        ccurl_setopt_pointer(h, CURLOPT_POSTFIELDS, body.baseAddress ?? UnsafeRawPointer(Self.emptyBody.utf8Start))
                    }
                }
                if case .file = destination {
                    // libcurl's default 16 KiB receive buffer made about 0.3 s more of the daemon's
                    // CPU per GiB here; 512 KiB and 1 MiB more again (out of the CPU's cache).
                    ccurl_setopt_long(h, CURLOPT_BUFFERSIZE, 128 << 10)
                }
                let context = Unmanaged.passUnretained(sink).toOpaque()
                ccurl_setopt_pointer(h, CURLOPT_WRITEDATA, context)
                ccurl_setopt_callback(h, CURLOPT_WRITEFUNCTION) { data, size, count, context in
                    let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
                    return sink.append(UnsafeRawBufferPointer(start: data, count: size * count))
                }
                ccurl_setopt_pointer(h, CURLOPT_HEADERDATA, context)
                ccurl_setopt_callback(h, CURLOPT_HEADERFUNCTION) { data, size, count, context in
                    let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
                    sink.header(UnsafeRawBufferPointer(start: data, count: size * count))
                    return size * count
                }
                return curl_easy_perform(h)
            }
        }
        // The body's last piece, short of a whole staging buffer.
        if code == CURLE_OK { _ = sink.flush() }
        if sink.tooLong || sink.writeErrno != nil {
            return .success(
                HTTPResponse(
                    status: sink.status, headers: sink.headers, body: sink.body, bodyTooLong: sink.tooLong, bodyInDestination: sink.written,
                    destinationErrno: sink.writeErrno))
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failure(TransportFailure(code: code, message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail))
        }
        var status = 0
        ccurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        ccurl_getinfo_long(h, CURLINFO_NUM_CONNECTS, &connects)
        connectionsOpened.add(connects, ordering: .relaxed)
        return .success(
            HTTPResponse(status: status, headers: sink.headers, body: sink.body, bodyTooLong: false, bodyInDestination: sink.written))
    }
}

/// Collects one response inside libcurl's callbacks (on the performing thread only).
private final class ResponseSink {
    let limit: Int
    /// Where a 206 body goes, written at `written` as it arrives.
    let destination: BodyDestination?
    var status = 0
    var headers: [String: String] = [:]
    var body: [UInt8] = []
    var written = 0
    var tooLong = false
    var writeErrno: Int32?
    /// For a file destination: the body's bytes since the last write, written out in whole
    /// `stagingSize` pieces at offsets that are multiples of it (from the destination's offset).
    /// libcurl hands over whatever one recv brought (any length, at any offset): written as they
    /// came, they left the file's page cache in small folios, and every later read of the file
    /// cost twice a natively written one's (1 GiB: 0.12–0.14 s against 0.06 s).
    private var staging: UnsafeMutableRawBufferPointer?
    private var staged = 0

    /// 128 KiB: measured for 1 GiB on radosgw, daemon CPU 1.4 s (1.75 s writing pieces as they
    /// came; 1 MiB pieces, out of the CPU's cache by the time they are written, 2.8 s), and the
    /// file then reads as fast as one `cp` wrote.
    static let stagingSize = 128 << 10

    init(limit: Int, destination: BodyDestination?) {
        self.limit = limit
        self.destination = destination
        if case .file = destination { staging = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.stagingSize, alignment: 4096) }
    }

    deinit { staging?.deallocate() }

    /// Writes what is staged; false (and `writeErrno` set) when the write failed.
    func flush() -> Bool {
        guard let staging, staged > 0, let destination else { return true }
        if let failed = destination.write(UnsafeRawBufferPointer(rebasing: staging[..<staged]), at: written - staged) {
            writeErrno = failed
            return false
        }
        staged = 0
        return true
    }

    /// The most of an error answer's body kept (its XML names the error); the rest is dropped.
    static let errorBodyLimit = 64 << 10

    /// Returning less than was given makes libcurl abandon the transfer (CURLE_WRITE_ERROR). The
    /// limit is for content only: an error answer is read on, so that its status is what the
    /// caller sees.
    func append(_ data: UnsafeRawBufferPointer) -> Int {
        guard (200..<300).contains(status) else {
            body.append(contentsOf: data.prefix(max(0, Self.errorBodyLimit - body.count)))
            return data.count
        }
        if status == 206, let destination {
            guard written + data.count <= destination.count else {
                tooLong = true
                return 0
            }
            guard let staging else {
                if let failed = destination.write(data, at: written) {
                    writeErrno = failed
                    return 0
                }
                written += data.count
                return data.count
            }
            var taken = 0
            while taken < data.count {
                let n = min(staging.count - staged, data.count - taken)
                (staging.baseAddress! + staged).copyMemory(from: data.baseAddress! + taken, byteCount: n)
                staged += n
                taken += n
                written += n
                if staged == staging.count && !flush() { return 0 }
            }
            return data.count
        }
        guard body.count + data.count <= limit else {
            body.append(contentsOf: data.prefix(limit - body.count))
            tooLong = true
            return 0
        }
        body.append(contentsOf: data)
        return data.count
    }

    /// A status line starts a new header block (a `100 Continue` comes before the real one).
    func header(_ line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("HTTP/") {
            headers = [:]
            let fields = text.split(separator: " ")
            status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
        } else if let colon = text.firstIndex(of: ":") {
            let name = text[..<colon].lowercased()
            headers[name] = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
}
