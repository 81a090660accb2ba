import Dispatch
import Logging
import Synchronization

/// Whether a mount asks the kernel for FUSE passthrough (`--passthrough`).
public enum PassthroughMode: String, Sendable, CaseIterable {
    /// Where the kernel offers it and allows this daemon: read-only opens of verified blobs whose
    /// data file is a local file of exactly the blob's size are read by the kernel directly.
    case auto
    /// The daemon serves every read.
    case off
}

/// A mount's kernel passthrough: what INIT negotiated (`PassthroughNegotiation`, the hooks), the
/// backing files of its opens (`PassthroughFiles`), and what the daemon still serves.
final class Passthrough: Sendable {
    let mode: PassthroughMode
    let negotiation: PassthroughNegotiation
    let files: PassthroughFiles
    /// READ requests the daemon served, for the line logged at unmount (and the tests that check
    /// that passthrough files send none).
    let daemonReads = Atomic<Int>(0)
    /// Opens being hashed or fetched before their reply on threads of their own (RequestShells'
    /// `replyOpenLater`): the session waits for them
    /// before it is destroyed, since each still holds a libfuse request of it.
    let deferredOpens = DispatchGroup()

    init(mode: PassthroughMode, logger: Logger) {
        self.mode = mode
        negotiation = PassthroughNegotiation()
        files = PassthroughFiles(logger: logger)
    }

    /// Whether opens are counted by mode: passthrough was negotiated at INIT. It stays so for the
    /// mount even once the kernel refused a backing open, since opens granted before still count.
    var isTracking: Bool { mode == .auto && negotiation.isNegotiated }

    /// Whether a new open may be granted passthrough.
    var isOn: Bool { isTracking && files.refusal == nil }

    /// "on", or "off (why)": for the startup line.
    var status: String {
        guard mode == .auto else { return "off (--passthrough off)" }
        switch negotiation.outcome {
        case .pending: return "off (the kernel's INIT was not seen)"
        case .notOffered: return "off (the kernel did not offer it: it needs Linux 6.9 or later with CONFIG_FUSE_PASSTHROUGH)"
        case .writebackCache: return "off (the writeback cache was negotiated)"
        case .initFailed: return "off (INIT failed)"
        case .negotiated: return files.refusal.map { "off (\($0))" } ?? "on"
        }
    }

    /// What the mount served how, for the line logged at unmount.
    var summary: String {
        let counts = files.counts
        return "\(daemonReads.load(ordering: .relaxed)) reads served by the daemon; "
            + "\(counts.passthroughOpens) passthrough opens, \(counts.daemonOpens) blob opens served by the daemon; "
            + "backing files opened \(counts.backingOpened), closed \(counts.backingClosed)"
    }
}
