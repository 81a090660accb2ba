import Foundation

/// Deterministic pseudo-random bytes (splitmix64, little-endian words): the same seed always gives the same blob.
public func seededBytes(count: Int, seed: UInt64) -> [UInt8] {
    precondition(count >= 0, "count must not be negative")
    var state = seed
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initializedCount in
        guard let base = buffer.baseAddress else {
            initializedCount = 0
            return
        }
        let raw = UnsafeMutableRawPointer(base)
        var offset = 0
        // Whole 8-byte words first: one store per step keeps 64 MiB fast even in debug builds.
        while offset + 8 <= count {
            raw.storeBytes(of: splitmix64(&state).littleEndian, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        if offset < count {
            var word = splitmix64(&state)
            while offset < count {
                base[offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                offset += 1
            }
        }
        initializedCount = count
    }
}

/// One step of splitmix64 (Steele, Lea, Flood): tiny state, good enough spread for test data.
@inline(__always)
private func splitmix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// SHA-256 of a file, computed by /usr/bin/sha256sum so it is independent of the code under test.
public func sha256Hex(ofFile path: String) throws -> String {
    try digestTool("/usr/bin/sha256sum", hexLength: 64, stdinPath: path)
}

/// SHA-256 of bytes, computed by /usr/bin/sha256sum.
public func sha256Hex(of bytes: [UInt8]) throws -> String {
    try digestTool("/usr/bin/sha256sum", hexLength: 64, bytes: bytes)
}

/// SHA-512 of a file, computed by /usr/bin/sha512sum.
public func sha512Hex(ofFile path: String) throws -> String {
    try digestTool("/usr/bin/sha512sum", hexLength: 128, stdinPath: path)
}

/// SHA-512 of bytes, computed by /usr/bin/sha512sum.
public func sha512Hex(of bytes: [UInt8]) throws -> String {
    try digestTool("/usr/bin/sha512sum", hexLength: 128, bytes: bytes)
}

/// Feeds bytes to the tool through a temporary file on stdin (a file, not a pipe: no SIGPIPE, no deadlock).
private func digestTool(_ tool: String, hexLength: Int, bytes: [UInt8]) throws -> String {
    let scratch = try TemporaryDirectory(prefix: "blobfs-sum")
    let input = scratch.path + "/input"
    try writeBytes(bytes, to: input)
    return try digestTool(tool, hexLength: hexLength, stdinPath: input)
}

/// Runs `tool` with the file as stdin, so odd file names can't change its output format ("hex  -").
private func digestTool(_ tool: String, hexLength: Int, stdinPath: String) throws -> String {
    guard FileManager.default.isReadableFile(atPath: stdinPath) else {
        throw TestSupportError("\(tool): cannot read \(stdinPath)")
    }
    let output = try runProcess(tool, [], stdinPath: stdinPath)
    guard output.status == 0 else {
        throw TestSupportError("\(tool) \(stdinPath) exited with \(output.status): \(output.stderrText)")
    }
    let hex = String(output.stdoutText.prefix(hexLength))
    guard hex.count == hexLength, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
        throw TestSupportError("\(tool) printed unexpected output: \(output.stdoutText)")
    }
    return hex
}
