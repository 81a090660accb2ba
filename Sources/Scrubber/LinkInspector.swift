import Distribution
import Storage
import StorageDriver

/// What re-hashing a blob's data found; each problem is reported once however many links name it.
enum BlobOutcome: Sendable { case intact, damaged, vanished }

/// One `_layers/<alg>/<hex>` directory of a repository: the link to inspect.
struct LinkEntry: Sendable {
    var digest: Digest
    /// Its `<alg>` directory, an index into `LinkInspector.directories`.
    var directory: Int
}

/// What a worker found about one link, before anything is counted or reported.
enum LinkFinding: Sendable {
    /// No `link` file in the directory: nothing to check, nothing counted.
    case absent
    /// The link directory cannot be entered: reported as unreachable, the check goes on.
    case failed(StorageDriverError)
    /// The link file itself is wrong.
    case problem(StoreProblem.Kind, String)
    /// The link holds `target`, whose data file is as found.
    case blob(target: Digest, data: DataFinding)
}

/// What a worker found about the data file that a link names.
enum DataFinding: Sendable {
    /// The blob directory is there, its data file is not.
    case missing
    /// The whole blob directory is gone.
    case deleted
    case symlink
    case unexaminable(String)
    /// A directory, or a FIFO, socket or device (`other`).
    case notAFile(FileKind)
    /// A regular file, hashed where the outcome was not known yet (canonical) and for an alias.
    case file(canonical: HashResult?, alias: HashResult?)
}

/// Inspects one repository's links on worker threads: reads each link, then opens (and where
/// needed hashes) the data file it names, all relative to held directories.
struct LinkInspector: Sendable {
    let repository: RepositoryName
    /// The repository's `_layers/<alg>` directories.
    let directories: [any DriverDirectory]
    /// The store's `blobs` directory.
    let blobs: any DriverDirectory
    /// Outcomes known when this repository's check began (the blob phase's): not hashed again.
    let known: [Digest: BlobOutcome]

    func inspect(_ entry: LinkEntry, _ worker: ScrubWorker) -> LinkFinding {
        let directory = directories[entry.directory]
        let relative = entry.digest.hex + "/link"
        let opened: OpenedFile
        do {
            opened = try directory.open(relative)
        } catch StorageDriverError.pathNotFound {
            return .absent
        } catch StorageDriverError.symlinkRefused {
            return .problem(.garbageLink, "not a regular file (a symbolic link?)")
        } catch {
            // A directory that cannot be opened failed the walk this replaces; a link file that
            // cannot be opened is an unreadable link.
            do {
                _ = try directory.directory(entry.digest.hex)
            } catch StorageDriverError.pathNotFound {
                return .absent
            } catch {
                return .failed(error)
            }
            return .problem(.unreadable, "\(error)")
        }
        switch opened.kind {
        case .directory: return .problem(.garbageLink, "a directory, not a link file")
        case .other: return .problem(.garbageLink, "not a regular file (a symbolic link?)")
        case .file: break
        }
        // The link's bytes are judged by the rules a mount reads links by: the same size limit,
        // an empty link reads as absent, anything else must be exactly a digest; only the
        // wording is the scrub's, with the bytes shown.
        let path = PathMapper.path(.layerLink(repository, entry.digest))
        let read = worker.linkContent(opened, path: path)
        let digest = entry.digest
        let readTarget: Digest?
        do {
            readTarget = try LinkedBlobStatter.target(ofLink: read, at: path)
        } catch {
            switch (read, error) {
            case (.success(let content), _):
                return .problem(.garbageLink, "the content is not a digest: \(Self.quoted(content))")
            case (.failure, .corruptLink(_, let reason)):
                return .problem(.garbageLink, reason)
            case (.failure(let failure), _):
                return .problem(.unreadable, "\(failure)")
            }
        }
        guard let target = readTarget else {
            return .problem(.emptyLink, "an empty link file (an interrupted write): \(digest) reads as absent")
        }
        do {
            try LinkedBlobStatter.checkTarget(target, of: digest, at: path)
        } catch {
            guard target.algorithm == .canonical else {
                return .problem(.garbageLink, "holds \(target); a link must hold the blob's canonical sha256 digest")
            }
            return .problem(.wrongLink, "the link for \(digest) holds \(target): reads of \(digest) would get another blob's bytes")
        }
        return .blob(target: target, data: inspectData(target, alias: digest.algorithm == .canonical ? nil : digest.algorithm, worker))
    }

    /// Opens the data file once: its kind and, when needed, its hashes in one pass.
    private func inspectData(_ target: Digest, alias: DigestAlgorithm?, _ worker: ScrubWorker) -> DataFinding {
        let blob = "\(target.algorithm.rawValue)/\(target.hex.prefix(2))/\(target.hex)"
        let dataRelative = blob + "/data"
        let known = known[target]
        let hashesCanonical = known == nil
        let hashesAlias = alias != nil && (known == nil || known == .intact)
        /// What a failure to reach the data file says about it, when it says something.
        func finding(_ error: any Error) -> DataFinding? {
            switch error as? StorageDriverError {
            case .pathNotFound: (try? blobs.stat(blob)) != nil ? .missing : .deleted
            case .symlinkRefused: .symlink
            default: nil
            }
        }

        var opened: OpenedFile?
        var openError: (any Error)?
        let kind: FileKind
        do {
            if hashesCanonical || hashesAlias {
                let file = try blobs.open(dataRelative)
                opened = file
                kind = file.kind
            } else {
                kind = try blobs.stat(dataRelative).kind
            }
        } catch {
            if let finding = finding(error) { return finding }
            // Not openable for reading (permissions, a socket): say what it is as a stat does,
            // and report the open's error as the read error.
            do {
                kind = try blobs.stat(dataRelative).kind
            } catch let statError {
                return finding(statError) ?? .unexaminable("\(statError)")
            }
            openError = error
        }
        guard kind == .file else { return .notAFile(kind) }
        guard hashesCanonical || hashesAlias else { return .file(canonical: nil, alias: nil) }

        let algorithms = (hashesCanonical ? [DigestAlgorithm.canonical] : []) + (hashesAlias ? [alias!] : [])
        let result: HashResult =
            if let opened { worker.hash(opened, algorithms) } else { .failed("\(openError!)", bytes: 0) }
        switch result {
        case .hashed(let digests, let size, let version):
            return .file(
                canonical: hashesCanonical ? .hashed([digests[0]], size: size, version: version) : nil,
                alias: hashesAlias ? .hashed([digests[digests.count - 1]], size: size, version: version) : nil)
        case .failed:
            return .file(canonical: hashesCanonical ? result : nil, alias: hashesAlias ? result : nil)
        }
    }

    /// Link content for a message: printable ASCII as is, the rest escaped, at most 80 bytes.
    static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes.prefix(80) {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7f: text.unicodeScalars.append(UnicodeScalar(byte))
            case UInt8(ascii: "\n"): text += "\\n"
            default:
                let hex = Array("0123456789abcdef".utf8)
                text += "\\x" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return text + (bytes.count > 80 ? "\"… (\(bytes.count) bytes)" : "\"")
    }
}
