/// A validated repository name: lowercase `component("/"component)*`, at most 255 characters,
/// the subset of the registry's grammar that round-trips through driver paths
/// (docs/storage-format.md, Repository names).
public struct RepositoryName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let maximumLength = 255

    /// The name as the registry spells it, e.g. `team/app/web`.
    public let value: String

    public init(_ value: String) throws(BlobError) {
        guard !value.isEmpty else { throw .invalidRepositoryName(value, reason: "empty name") }
        guard value.utf8.count <= Self.maximumLength else {
            throw .invalidRepositoryName(value, reason: "longer than \(Self.maximumLength) characters")
        }
        for component in value.split(separator: "/", omittingEmptySubsequences: false) {
            if let reason = Self.problem(inComponent: component.utf8) {
                throw .invalidRepositoryName(value, reason: reason)
            }
        }
        self.value = value
    }

    /// The name's components, e.g. `["team", "app", "web"]`.
    public var components: [Substring] { value.split(separator: "/") }

    /// Why `component` is not a valid name component, or nil: `[a-z0-9]+ (separator [a-z0-9]+)*`
    /// with `separator = [._] | __ | -+` (the v3 grammar).
    public static func problem(inComponent component: some Collection<UInt8>) -> String? {
        guard !component.isEmpty else { return "empty path component" }
        func isAlnum(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
        }
        let bytes = Array(component)
        var i = 0
        while true {
            // One run of alphanumerics.
            let start = i
            while i < bytes.count, isAlnum(bytes[i]) { i += 1 }
            guard i > start else {
                return describe(bytes, at: i)
            }
            if i == bytes.count { return nil }
            // One separator, then another run must follow.
            switch bytes[i] {
            case UInt8(ascii: "."):
                i += 1
            case UInt8(ascii: "_"):
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "_") { i += 1 }
            case UInt8(ascii: "-"):
                while i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            default:
                return describe(bytes, at: i)
            }
            if i == bytes.count { return "component \(quoted(String(decoding: bytes, as: UTF8.self))) ends with a separator" }
        }
    }

    private static func describe(_ bytes: [UInt8], at i: Int) -> String {
        let component = quoted(String(decoding: bytes, as: UTF8.self))
        guard i < bytes.count else { return "component \(component) ends with a separator" }
        let c = bytes[i]
        if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { return "component \(component) has uppercase letters" }
        if i == 0 { return "component \(component) must start with a lowercase letter or digit" }
        return "component \(component) has a character not allowed in names"
    }

    public var description: String { value }
    public static func < (lhs: RepositoryName, rhs: RepositoryName) -> Bool { lhs.value < rhs.value }
}
