import CCrypto
import Foundation

/// The encodings SigV4 and the S3 API want, written once.
enum S3Encoding {
    /// AWS URI encoding: `A-Za-z0-9-_.~` stay, every other byte becomes `%XX` (uppercase); `/`
    /// stays only where `keepSlash` (an object key in the path), never in a query value.
    static func uri(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// The canonical query string: names sorted, names and values AWS-encoded, a valueless
    /// parameter written `name=`. libcurl 7.88 signs the query exactly as it is sent, and
    /// radosgw (like AWS) rejects an unsorted one or a raw `/` in a value.
    static func query(_ parameters: [String: String]) -> String {
        parameters.map { (uri($0.key, keepSlash: false), uri($0.value, keepSlash: false)) }
            .sorted { $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Text escaped for an XML element's content (keys in DeleteObjects, ETags in Complete).
    static func xmlEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// sha256 of a payload in lowercase hex: `x-amz-content-sha256`, which libcurl 7.88 then signs
    /// as the payload hash (real S3 and radosgw refuse a request without it).
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBytes { _ = SHA256($0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count, &digest) }
        return digest.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// The sha256 of an empty payload, for every request without a body.
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// MD5 of a payload in base64: `Content-MD5`, which DeleteObjects requires.
    static func md5Base64(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        bytes.withUnsafeBytes { _ = EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_md5(), nil) }
        digest.removeSubrange(Int(length)...)
        return Data(digest).base64EncodedString()
    }

    /// Seconds since the epoch from an ISO 8601 time as listings give it (`2026-12-02T17:56:37.000Z`).
    static func epochSeconds(iso8601 text: String) -> Int64 {
        let numbers = text.split(whereSeparator: { !$0.isNumber }).prefix(6).compactMap { Int32($0) }
        guard numbers.count == 6 else { return 0 }
        return epochSeconds(year: numbers[0], month: numbers[1], day: numbers[2], numbers[3], numbers[4], numbers[5])
    }

    /// Seconds since the epoch from an HTTP date as HEAD gives it (`Wed, 02 Dec 2026 17:56:37 GMT`).
    static func epochSeconds(httpDate text: String) -> Int64 {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "," })
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard fields.count >= 7, let month = months.firstIndex(of: String(fields[2])), let day = Int32(fields[1]),
            let year = Int32(fields[3]), let hour = Int32(fields[4]), let minute = Int32(fields[5]), let second = Int32(fields[6])
        else { return 0 }
        return epochSeconds(year: year, month: Int32(month) + 1, day: day, hour, minute, second)
    }

    /// A UTC calendar time in seconds; a modification time is informative only, so 0 stands for
    /// one that did not parse.
    private static func epochSeconds(year: Int32, month: Int32, day: Int32, _ hour: Int32, _ minute: Int32, _ second: Int32) -> Int64 {
        var fields = tm()
        fields.tm_year = year - 1900
        fields.tm_mon = month - 1
        fields.tm_mday = day
        fields.tm_hour = hour
        fields.tm_min = minute
        fields.tm_sec = second
        return Int64(timegm(&fields))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
