/// Runs one HTTP request through /usr/bin/curl; bodies travel through temporary files.
struct Curl: Sendable {
    /// Upper bound for one request, so a stuck registry fails a test instead of hanging it.
    var maxSeconds: Int = 300
    /// Signs the request with AWS Signature V4 (curl's `--aws-sigv4`) for a server that checks
    /// signatures. curl 7.88 signs the URL's query as written: the caller sorts and encodes it
    /// (`S3TestQuery`), and the payload is declared unsigned in `x-amz-content-sha256`.
    var signing: S3Signing? = nil

    func perform(method: String, url: String, headers: [String: String], body: [UInt8]?) throws -> HTTPResponse {
        let scratch = try TemporaryDirectory(prefix: "blobfs-curl")
        let headerPath = scratch.path + "/headers"
        let bodyPath = scratch.path + "/body"
        var arguments = [
            "-s", "-S",  // no progress meter, but do print errors
            "-g",  // no URL globbing: the URL is used as given
            "--noproxy", "*",  // an http_proxy in the environment must not capture 127.0.0.1
            "--connect-timeout", "5",
            "--max-time", String(maxSeconds),
            "-D", headerPath,
            "-o", bodyPath,
        ]
        // No 100-continue round trip for large bodies; but curl 7.88 would sign the removed
        // header as `expect:` with an empty value, which the server never sees.
        if signing == nil { arguments += ["-H", "Expect:"] }
        if method == "HEAD" {
            arguments.append("-I")  // -X HEAD would wait for a body that never comes
        } else {
            arguments += ["-X", method]
        }
        if let signing {
            arguments += [
                "--aws-sigv4", "aws:amz:\(signing.region):s3", "--user", "\(signing.accessKey):\(signing.secretKey)",
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            ]
        }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            arguments += ["-H", "\(name): \(value)"]
        }
        if let body {
            let requestPath = scratch.path + "/request"
            try writeBytes(body, to: requestPath)
            arguments += ["--data-binary", "@" + requestPath]
        }
        arguments.append(url)

        let output = try runProcess("/usr/bin/curl", arguments)
        guard output.status == 0 else {
            throw TestSupportError("curl \(method) \(url) failed with exit code \(output.status): \(output.stderrText)")
        }
        let (status, responseHeaders) = try parseHeaderDump(String(decoding: try readBytes(headerPath), as: UTF8.self))
        // With -I curl writes the headers to -o as well; a HEAD has no body. For an empty body curl creates no file.
        let responseBody = method == "HEAD" ? [] : (try? readBytes(bodyPath)) ?? []
        return HTTPResponse(status: status, headers: responseHeaders, body: responseBody)
    }
}
