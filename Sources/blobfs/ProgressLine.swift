import Glibc

/// A one-line progress display on standard error, only when standard error is a terminal, redrawn
/// at most five times a second so that progress costs nothing next to the work.
final class ProgressLine {
    let enabled: Bool
    private var lastDraw: Int64 = 0
    private var visible = false

    init() {
        enabled = isatty(2) == 1
    }

    /// Shows `text` unless the last redraw was under 200 ms ago; `text` is built only when shown.
    func update(_ text: () -> String) {
        guard enabled else { return }
        let now = Self.milliseconds()
        guard now - lastDraw >= 200 else { return }
        lastDraw = now
        writeStandardError("\r\u{1B}[K" + String(text().prefix(terminalWidth() - 1)))
        visible = true
    }

    /// Removes the line, before printing anything else or at the end.
    func clear() {
        guard visible else { return }
        writeStandardError("\r\u{1B}[K")
        visible = false
    }

    private func terminalWidth() -> Int {
        var size = winsize()
        return ioctl(2, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 10 ? Int(size.ws_col) : 80
    }

    private static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
