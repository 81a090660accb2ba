import Distribution
import Logging
import StorageDriver

/// Resolves a repository's link files to canonical descriptors: the repository's access check.
public struct LinkedBlobStatter: BlobDescriptorService {
    let driver: any StorageDriver
    let repository: RepositoryName
    /// Tried in order; the first is where new links are written.
    let linkSets: [LinkSet]
    let global: any BlobStatter
    let logger: Logger

    public func stat(_ digest: Digest) throws(BlobError) -> Descriptor {
        for linkSet in linkSets {
            guard let target = try Self.readLink(of: digest, in: linkSet, of: repository, driver: driver) else { continue }
            if target != digest {
                logger.debug("alias link", metadata: ["digest": "\(digest)", "target": "\(target)"])
            }
            // A link whose data is gone (a 2.8 GC leaves these) is absent, as the registry says.
            do {
                return try global.stat(target)
            } catch .unknown {
                throw .unknown(digest)
            }
        }
        throw .unknown(digest)
    }

    /// Links carry no descriptor of their own.
    public func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError) {}

    /// Removes the link for `digest` in every link set; absent links are fine.
    public func clear(_ digest: Digest) throws(BlobError) {
        for linkSet in linkSets {
            do throws(StorageDriverError) {
                try driver.delete(linkSet.path(repository, digest))
            } catch .pathNotFound {
                continue
            } catch {
                throw error.blobError
            }
        }
    }

    /// The digest a link file holds; nil when there is no link, or an empty one (a write in
    /// progress or a crash leftover). Anything else that is not exactly a digest is corrupt.
    static func readLink(_ path: DriverPath, driver: any StorageDriver) throws(BlobError) -> Digest? {
        let read: Result<[UInt8], StorageDriverError>
        do throws(StorageDriverError) {
            read = .success(try driver.getContent(path, limit: Self.linkLimit))
        } catch .pathNotFound {
            return nil
        } catch {
            read = .failure(error)
        }
        return try Self.target(ofLink: read, at: path)
    }

    /// What `readLink(_:driver:)` reads, for the link of `digest` in a repository's `linkSet`:
    /// read below the set's directory of the digest's algorithm, which a driver that can holds
    /// open (a cold lookup's link read), and its full path spelled only for an error.
    static func readLink(
        of digest: Digest, in linkSet: LinkSet, of repository: RepositoryName, driver: any StorageDriver
    ) throws(BlobError) -> Digest? {
        let read: Result<[UInt8], StorageDriverError>
        do throws(StorageDriverError) {
            let content = try driver.getContent(PathMapper.link(below: digest), below: linkSet.directory(repository, digest.algorithm), limit: Self.linkLimit)
            // What nearly every link holds: its own name, which needs no parse.
            if Self.spells(content, digest) { return digest }
            read = .success(content)
        } catch .pathNotFound {
            return nil
        } catch {
            read = .failure(error)
        }
        return try Self.target(ofLink: read, at: linkSet.path(repository, digest))
    }

    /// Whether `bytes` are exactly `<algorithm>:<hex>` of `digest`.
    static func spells(_ bytes: [UInt8], _ digest: Digest) -> Bool {
        let algorithm = digest.algorithm.rawValue.utf8
        let hex = digest.hex.utf8
        guard bytes.count == algorithm.count + 1 + hex.count, bytes[algorithm.count] == UInt8(ascii: ":") else { return false }
        return bytes[..<algorithm.count].elementsEqual(algorithm) && bytes[(algorithm.count + 1)...].elementsEqual(hex)
    }

    /// Refuses a link that holds another blob than its name promises: the link of a sha256 name
    /// must hold that very digest, and an alias's (sha384, sha512) a sha256 digest, where the
    /// data lives. The registry would serve such a link's target under the name; a file named
    /// by a digest must have that digest's bytes, so a mount treats it as corrupt.
    public static func checkTarget(_ target: Digest, of name: Digest, at path: @autoclosure () -> DriverPath) throws(BlobError) {
        if name.algorithm == .sha256 {
            guard target == name else {
                throw .corruptLink(path: path().value, reason: "holds \(target), another blob than its name \(name)")
            }
        } else {
            guard target.algorithm == .sha256 else {
                throw .corruptLink(path: path().value, reason: "holds \(target): an alias must hold a sha256 digest")
            }
        }
    }

    /// More than this is no link (one holds a digest: at most 135 bytes).
    public static let linkLimit = 4096

    /// What reading a link file found: nil when it is empty (a write in progress or a crash
    /// leftover), the digest when its bytes are exactly one, and corrupt otherwise.
    public static func target(ofLink read: Result<[UInt8], StorageDriverError>, at path: @autoclosure () -> DriverPath) throws(BlobError) -> Digest? {
        let content: [UInt8]
        switch read {
        case .success(let bytes): content = bytes
        case .failure(.isDirectory): throw .corruptLink(path: path().value, reason: "is a directory")
        case .failure(.tooLarge(_, let size, _)): throw .corruptLink(path: path().value, reason: "\(size) bytes, too large for a link")
        case .failure(let error): throw error.blobError
        }
        if content.isEmpty { return nil }
        do {
            return try Digest(parsing: String(decoding: content, as: UTF8.self))
        } catch {
            throw .corruptLink(path: path().value, reason: error.description)
        }
    }
}
