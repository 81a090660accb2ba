import Glibc
import Logging

/// A swift-log handler that writes one line per message to standard error (fd 2) with a single
/// write(2), so lines from libfuse's worker threads never interleave:
/// `2026-11-29T05:46:45.123+0000 warning blobfs.fs: read failed digest=sha256:… path=/…`.
struct StandardErrorLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        var line = "\(Self.timestamp()) \(event.level) \(label): \(event.message)"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(Self.quotedIfNeeded("\(value)"))"
        }
        if let error = event.error { line += " error=\(Self.quotedIfNeeded("\(error)"))" }
        writeStandardError(line + "\n")
    }

    /// Local time with milliseconds and the UTC offset.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        let millis = now.tv_nsec / 1_000_000
        let padded = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(format(parts, "%Y-%m-%dT%H:%M:%S")).\(padded)\(format(parts, "%z"))"
    }

    private static func format(_ time: tm, _ pattern: String) -> String {
        var time = time
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBufferPointer { strftime($0.baseAddress!, $0.count, pattern, &time) }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }

    /// Values with spaces or quotes are quoted, so a line still splits into key=value pairs.
    static func quotedIfNeeded(_ value: String) -> String {
        value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "\n" }) ? value.debugDescription : value
    }
}

/// Sends every logger of the process to standard error at `level`; call once, before any logging.
func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: level) }
}
