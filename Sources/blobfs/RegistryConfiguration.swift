import Glibc
import Yams

/// What blobfs takes from the registry's own `config.yml`: where the filesystem or the s3 driver
/// keeps the store, and the blob descriptor cache the registry is configured with.
struct RegistryConfiguration: Equatable {
    /// The blob descriptor cache named under `storage.cache`.
    enum Cache: Equatable {
        case inMemory(size: Int?)
        case redis(size: Int?)
        /// A name blobfs does not know.
        case other(String)
    }

    /// `storage.filesystem.rootdirectory`, or the registry's default; "" when the store is on S3.
    var rootDirectory: String
    /// `storage.s3`, when the registry keeps its store in a bucket.
    var s3: S3Section?
    /// Whether the file sets no rootdirectory, so that `rootDirectory` is the registry's default:
    /// worth saying, since a typo in the key silently moves the store.
    var rootDirectoryIsDefault = false
    /// `storage.cache.blobdescriptor` and `blobdescriptorsize`; nil when there is no cache section.
    var cache: Cache?
    /// The top-level `redis` section (2.x shape): where the shared descriptor cache lives.
    var redis: RedisSection?

    /// `redis: {addr, password, db, dialtimeout, readtimeout}`.
    struct RedisSection: Equatable {
        var address: String
        var password: String?
        var database: Int = 0
        var dialTimeout: Double?
        var readTimeout: Double?
    }

    /// The filesystem driver's root when the configuration names none (the registry's default).
    static let defaultRootDirectory = "/var/lib/registry"
    /// The largest `redis.db`: Redis has 16 databases by default, but `databases` in redis.conf
    /// can raise that, and SELECT takes any non-negative 32-bit number; Redis itself says whether
    /// the one given exists.
    static let maxRedisDatabase = Int(Int32.max)
    /// Keys of `storage` that are settings, not drivers (the registry's own list).
    static let storageSettings: Set<String> = ["cache", "delete", "redirect", "maintenance", "tag"]

    /// Reads and parses a configuration file.
    static func load(path: String) throws(CommandFailure) -> RegistryConfiguration {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            throw CommandFailure("cannot read the registry configuration \(path): \(systemError(error.code))")
        }
        return try parse(text, source: path)
    }

    static func parse(_ text: String, source: String) throws(CommandFailure) -> RegistryConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            let oneLine = "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingPrefix(" ") }.joined(separator: " ")
            throw CommandFailure("\(source) is not valid YAML: \(oneLine)")
        }
        guard let storage = root?["storage"], let mapping = storage.mapping else {
            throw CommandFailure("\(source) has no storage section: is it a registry configuration?")
        }
        let drivers: [String] = Array(mapping.keys).compactMap(\.string).filter { !storageSettings.contains($0) }
        guard drivers == ["filesystem"] || drivers == ["s3"] else {
            throw CommandFailure(
                drivers.isEmpty
                    ? "\(source) configures no storage driver"
                    : "\(source) configures the \(drivers.joined(separator: ", ")) storage driver; "
                        + "blobfs reads only the filesystem and s3 drivers' stores"
            )
        }
        var configuration: RegistryConfiguration
        if drivers == ["s3"] {
            configuration = RegistryConfiguration(rootDirectory: "", s3: try S3Section.parse(storage["s3"], source: source))
        } else {
            let directory = try scalarText(storage["filesystem"]?["rootdirectory"], "storage.filesystem.rootdirectory", source) ?? ""
            configuration = RegistryConfiguration(rootDirectory: directory.isEmpty ? defaultRootDirectory : directory)
            configuration.rootDirectoryIsDefault = directory.isEmpty
        }
        if let cacheNode = storage["cache"], let kind = try scalarText(cacheNode["blobdescriptor"], "storage.cache.blobdescriptor", source) {
            // 0 is the registry's "default size", as a missing key is.
            let size = try integer(cacheNode["blobdescriptorsize"], "storage.cache.blobdescriptorsize", source, in: 0...Int.max)
            configuration.cache =
                switch kind {
                case "inmemory": .inMemory(size: size == 0 ? nil : size)
                case "redis": .redis(size: size == 0 ? nil : size)
                default: .other(kind)
                }
        }
        if let redis = root?["redis"], let address = try scalarText(redis["addr"], "redis.addr", source), !address.isEmpty {
            var section = RedisSection(
                address: address, password: try scalarText(redis["password"], "redis.password", source).flatMap { $0.isEmpty ? nil : $0 },
                database: try integer(redis["db"], "redis.db", source, in: 0...maxRedisDatabase) ?? 0)
            if let duration = try scalarText(redis["dialtimeout"], "redis.dialtimeout", source) {
                section.dialTimeout = try goDuration(duration, "redis.dialtimeout", source)
            }
            if let duration = try scalarText(redis["readtimeout"], "redis.readtimeout", source) {
                section.readTimeout = try goDuration(duration, "redis.readtimeout", source)
            }
            configuration.redis = section
        }
        return configuration
    }

    /// A scalar's text, nil when the key is absent (or null); a mapping or a list where a value
    /// belongs is an error naming the key, never a silent default.
    static func scalarText(_ node: Node?, _ key: String, _ source: String) throws(CommandFailure) -> String? {
        guard let node, node.tag.rawValue != Tag.Name.null.rawValue else { return nil }
        guard case .scalar(let scalar) = node else {
            throw CommandFailure("\(source): \(key) must be a single value, not a \(node.mapping != nil ? "mapping" : "list")")
        }
        return scalar.string
    }

    /// A YAML integer in `range`, nil when the key is absent. A quoted number, a fraction or a word
    /// is an error naming the key, as the registry refuses them, rather than a silent 0.
    static func integer(_ node: Node?, _ key: String, _ source: String, in range: ClosedRange<Int>) throws(CommandFailure) -> Int? {
        guard let written = try scalarText(node, key, source) else { return nil }
        guard node?.tag.rawValue == Tag.Name.int.rawValue, let value = node?.int, range.contains(value) else {
            let bounds = range.upperBound == Int.max ? "\(range.lowerBound) or more" : "from \(range.lowerBound) to \(range.upperBound)"
            let quoted = Int(written) != nil && node?.scalar?.style != .plain ? " (a YAML integer is written without quotes)" : ""
            throw CommandFailure("\(source): \(key) \(written.debugDescription) is not an integer \(bounds)\(quoted)")
        }
        return value
    }

    /// A YAML boolean, nil when the key is absent; anything else is an error naming the key.
    static func boolean(_ node: Node?, _ key: String, _ source: String) throws(CommandFailure) -> Bool? {
        guard let written = try scalarText(node, key, source) else { return nil }
        guard let value = node?.bool else { throw CommandFailure("\(source): \(key) \(written.debugDescription) is not true or false") }
        return value
    }

    /// Seconds from a Go duration as the registry's configuration writes them (`2s`, `500ms`, `1m30s`).
    static func goDuration(_ text: String, _ key: String, _ source: String) throws(CommandFailure) -> Double {
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var rest = Substring(text)
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            rest = rest.dropFirst(number.count)
            guard let value = Double(number), let unit = units.first(where: { rest.hasPrefix($0.0) }) else {
                throw CommandFailure("\(source): \(key) \(text.debugDescription) is not a duration like 2s or 500ms")
            }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        return total
    }
}

/// An errno from reading a file.
struct FileReadError: Error {
    var code: Int32
}

/// The whole content of a (small) text file, read with the C library so failures keep their errno.
func readTextFile(_ path: String) throws(FileReadError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileReadError(code: errno) }
    defer { close(fd) }
    var content: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FileReadError(code: errno)
        }
        if n == 0 { break }
        content.append(contentsOf: chunk[..<n])
    }
    return String(decoding: content, as: UTF8.self)
}
