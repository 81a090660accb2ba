import Glibc
import S3
import Scrubber

/// An AWS shared credentials file (`~/.aws/credentials`, or `--s3-credentials-file`): INI sections
/// named by profile, each with `aws_access_key_id`, `aws_secret_access_key` and optionally
/// `aws_session_token`. It holds a secret, so it is held to the Redis password file's rules:
/// a regular file of the daemon's user that nobody else can read or write, not a link, bounded.
enum AWSCredentialsFile {
    /// Far more than any credentials file: a larger one is the wrong file (or a device).
    static let limit = 1 << 20

    /// The credentials of `profile` in the file at `path`.
    static func read(_ path: String, profile: String) throws(CommandFailure) -> S3Credentials {
        let text = try readPrivate(path)
        guard let values = parse(text)[profile] else {
            throw CommandFailure("the S3 credentials file \(path) has no [\(profile)] profile")
        }
        guard let accessKey = values["aws_access_key_id"], !accessKey.isEmpty,
            let secretKey = values["aws_secret_access_key"], !secretKey.isEmpty
        else {
            throw CommandFailure("the [\(profile)] profile of the S3 credentials file \(path) lacks aws_access_key_id or aws_secret_access_key")
        }
        return S3Credentials(accessKey: accessKey, secretKey: secretKey, sessionToken: values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Profiles and their `key = value` lines. Comments start with `#` or `;`; `[profile x]` (the
    /// config file's spelling) names `x` too; keys are case-insensitive as the AWS CLI reads them.
    static func parse(_ text: String) -> [String: [String: String]] {
        var profiles: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingPrefix(while: \.isWhitespace)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), let close = line.lastIndex(of: "]") {
                var name = line[line.index(after: line.startIndex)..<close].trimmingPrefix(while: \.isWhitespace)
                if name.hasPrefix("profile ") { name = name.dropFirst("profile ".count).trimmingPrefix(while: \.isWhitespace) }
                let profile = String(name.reversed().drop(while: \.isWhitespace).reversed())
                current = profile
                profiles[profile, default: [:]] = profiles[profile] ?? [:]
                continue
            }
            guard let profile = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters().lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters()
            profiles[profile, default: [:]][key] = value
        }
        return profiles
    }

    /// The file's text, refused as the Redis password file is when others could read or change it.
    private static func readPrivate(_ path: String) throws(CommandFailure) -> String {
        String(decoding: try SecretFile.read(path, name: "the S3 credentials file", whose: "a credentials file's", limit: limit), as: UTF8.self)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingCharacters() -> String {
        String(self.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
