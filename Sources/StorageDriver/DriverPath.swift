/// An absolute, `/`-separated driver path matching `^(/[A-Za-z0-9._-]+)+$` (docs/storage-format.md,
/// Driver paths).
/// Components `.` and `..` are refused too, so a path can never leave the driver's root.
public struct DriverPath: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) throws(StorageDriverError) {
        guard Self.isValid(value) else { throw .invalidPath(value) }
        self.value = value
    }

    private init(unchecked value: String) { self.value = value }

    /// A path built only from parts that are each valid already (Storage's PathMapper: digests,
    /// repository names, tags and upload ids all match the component grammar). Checked in debug
    /// builds; in release builds it spares the per-character check on every cold lookup.
    package init(composedOfValidParts value: String) {
        assert(Self.isValid(value), "not a valid driver path: \(value)")
        self.value = value
    }

    /// The path relative to the root, without the leading `/`.
    public var relative: Substring { value.dropFirst() }

    public var components: [Substring] { value.split(separator: "/") }

    /// The last component.
    public var name: String { String(value[value.index(after: value.lastIndex(of: "/")!)...]) }

    /// The parent path, or nil for a one-component path.
    public var parent: DriverPath? {
        let slash = value.lastIndex(of: "/")!
        return slash == value.startIndex ? nil : DriverPath(unchecked: String(value[..<slash]))
    }

    /// This path with one more component; the component must itself be valid.
    public func appending(_ component: String) throws(StorageDriverError) -> DriverPath {
        // Only the new component needs checking: `self` is valid already.
        guard Self.isValidComponent(component) else { throw .invalidPath(value + "/" + component) }
        return DriverPath(unchecked: value + "/" + component)
    }

    /// This path with `relative` (components joined by `/`) below it, each component checked.
    public func appending(path relative: String) throws(StorageDriverError) -> DriverPath {
        try DriverPath(value + "/" + relative)
    }

    /// Whether `self` is `other` or lies below it.
    public func isWithin(_ other: DriverPath) -> Bool {
        value == other.value || value.hasPrefix(other.value + "/")
    }

    public var description: String { value }
    public static func < (lhs: DriverPath, rhs: DriverPath) -> Bool { lhs.value < rhs.value }

    /// One component: `[A-Za-z0-9._-]+`, and not `.` or `..`.
    static func isValidComponent(_ component: String) -> Bool {
        var count = 0
        var allDots = true
        for c in component.utf8 {
            guard isComponentByte(c) else { return false }
            if c != UInt8(ascii: ".") { allDots = false }
            count += 1
        }
        return count > 0 && !(allDots && count <= 2)
    }

    private static func isComponentByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
            || c == UInt8(ascii: "-")
    }

    static func isValid(_ value: String) -> Bool {
        var componentLength = 0
        var componentIsDots = true
        var sawAny = false
        for c in value.utf8 {
            if c == UInt8(ascii: "/") {
                if sawAny && (componentLength == 0 || (componentIsDots && componentLength <= 2)) { return false }
                componentLength = 0
                componentIsDots = true
                sawAny = true
                continue
            }
            guard sawAny else { return false }  // must start with "/"
            let ok =
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
                || c == UInt8(ascii: "-")
            guard ok else { return false }
            if c != UInt8(ascii: ".") { componentIsDots = false }
            componentLength += 1
        }
        return sawAny && componentLength > 0 && !(componentIsDots && componentLength <= 2)
    }
}
