import Glibc

/// Writes all of `text` to a file descriptor in as few write(2) calls as the kernel allows, so a
/// line from one thread never interleaves with another's. Errors are ignored: there is nowhere
/// left to report them.
func writeAll(_ text: String, to fd: Int32) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

/// Writes to standard error (fd 2); the C global `stderr` is off limits in Swift 6.
func writeStandardError(_ text: String) {
    writeAll(text, to: 2)
}

/// The C library's text for an errno value.
func systemError(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Writes to standard output unbuffered, so lines keep their order with standard error's.
func writeStandardOutput(_ text: String) {
    writeAll(text, to: 1)
}
