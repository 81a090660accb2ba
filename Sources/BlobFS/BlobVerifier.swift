import Distribution
import Storage
import Synchronization

/// Checks each blob against its digest once per mount, before any of its bytes are served: the
/// first read of a blob hashes the whole data file. Hashing inline while serving would let tools
/// that treat a short read as "the file shrank" (tar pads with zeros and only warns) take the
/// pages served before the mismatch; checked up front, a corrupt blob fails its first read.
/// With a ledger, a blob an earlier mount verified is trusted while its data file is unchanged.
final class BlobVerifier: Sendable {
    /// What is known of one blob in this mount.
    enum Status: Sendable {
        case unchecked
        case intact
        case corrupt(actual: Digest)
    }

    /// One blob's status; its lock is held while the blob is hashed, so concurrent first readers
    /// wait for one pass instead of each making their own.
    final class Gate: Sendable {
        let status = Mutex(Status.unchecked)
    }

    private let gates = Mutex<[Digest: Gate]>([:])
    /// What earlier mounts verified (`--remember-verified`), if this mount keeps a ledger.
    let ledger: VerificationLedger?

    init(ledger: VerificationLedger? = nil) {
        self.ledger = ledger
    }

    /// The blob's status without hashing.
    func status(of digest: Digest) -> Status {
        guard let gate = gates.withLock({ $0[digest] }) else { return .unchecked }
        return gate.status.withLock { $0 }
    }

    /// Hashes the blob unless it was checked before; returns its status.
    func check(_ reader: DataFileReader) throws -> Status {
        let digest = reader.descriptor.digest
        let gate = gates.withLock { gates in
            if let gate = gates[digest] { return gate }
            let gate = Gate()
            gates[digest] = gate
            return gate
        }
        return try gate.status.withLock { status in
            if case .unchecked = status {
                let version = ledger == nil ? nil : try reader.version()
                if let ledger, let version, ledger.vouches(for: digest, version) {
                    status = .intact  // verified by an earlier mount, and not written since
                    return status
                }
                let actual = try Self.hash(reader, algorithm: digest.algorithm)
                status = actual == digest ? .intact : .corrupt(actual: actual)
                // Only a version that stayed the same while it was hashed is what was verified.
                if actual == digest, let ledger, let version, try reader.version() == version {
                    ledger.record(digest, version)
                }
            }
            return status
        }
    }

    private static func hash(_ reader: DataFileReader, algorithm: DigestAlgorithm) throws -> Digest {
        let digester = Digester(algorithm)
        let piece = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { piece.deallocate() }
        var offset: Int64 = 0
        while offset < reader.descriptor.size {
            let n = try reader.read(into: piece, at: offset)
            digester.update(UnsafeRawBufferPointer(rebasing: piece[..<n]))
            offset += Int64(n)
        }
        return digester.digest()
    }
}
