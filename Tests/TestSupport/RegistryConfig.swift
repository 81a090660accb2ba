/// The registry's YAML configuration for a test run, built by hand so every setting is visible here.
struct RegistryConfig {
    var root: String
    var cache: RegistryServer.Cache
    var readOnly: Bool
    var port: Int
    /// The registry's S3 driver on this bucket instead of the filesystem at `root`.
    var s3: RegistryS3Storage? = nil

    var yaml: String {
        var lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: false",
            "storage:",
        ]
        if let s3 {
            lines += s3.yamlLines.map { "  " + $0 }
        } else {
            lines += ["  filesystem:", "    rootdirectory: \(quoted(root))"]
        }
        lines += [
            "  delete:",
            "    enabled: true",  // DELETE of blobs and manifests answers 405 without it
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",  // else a timer deletes old _uploads/ in the middle of a test
        ]
        if readOnly {
            lines += ["    readonly:", "      enabled: true"]
        }
        switch cache {
        case .none:
            break  // no key at all: every stat goes to storage, so nothing hides a broken tree
        case .inmemory:
            lines += ["  cache:", "    blobdescriptor: inmemory"]
        case .redis:
            lines += ["  cache:", "    blobdescriptor: redis"]
        }
        lines += [
            "http:",
            "  addr: \(quoted("127.0.0.1:\(port)"))",
            "  secret: blobfs-test-secret",  // fixed, so upload URLs (_state HMAC) survive a restart
        ]
        if case .redis(let address) = cache {
            lines += ["redis:", "  addr: \(quoted(address))", "  db: 0"]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A YAML double-quoted scalar, so paths with spaces, colons or '#' stay one string.
func quoted(_ value: String) -> String {
    var result = "\""
    for character in value {
        switch character {
        case "\\": result += "\\\\"
        case "\"": result += "\\\""
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        default: result.append(character)
        }
    }
    return result + "\""
}
