import CFuse
import Dispatch
import Glibc
import Logging
import Storage
import Synchronization

/// The backing files of a mount's passthrough opens: one backing id per inode, shared by its
/// passthrough opens and closed at the last one's release (the kernel needs the id while it
/// processes each OPEN reply, and gives EIO to a second id for an inode in use).
///
/// The kernel runs one I/O mode per inode at a time: while an inode has opens the daemon serves,
/// a passthrough open of it fails with EIO, and the other way round. So each inode's opens are
/// counted by mode, and a mode holds until its opens drain: an inode with daemon-served opens
/// gets more of them even once its blob is verified, and one with passthrough opens keeps its id.
final class PassthroughFiles: Sendable {
    /// How one open is served.
    enum Grant: Sendable, Equatable {
        /// Passthrough was never negotiated: nothing is counted.
        case untracked
        /// The daemon serves its reads (today's path), counted so that no passthrough open of the
        /// inode is granted meanwhile.
        case daemon
        /// The kernel reads the data file directly, through this backing id.
        case passthrough(Int32)
    }

    /// What the mount's passthrough opens came to, for the line logged at unmount.
    struct Counts: Sendable, Equatable {
        var passthroughOpens = 0
        var daemonOpens = 0
        var backingOpened = 0
        var backingClosed = 0
    }

    private struct Inode {
        var backingID: Int32 = 0
        var passthroughOpens = 0
        var daemonOpens = 0
        /// Write opens (identical rewrites) of the inode, live or waiting for its passthrough
        /// opens to drain: while there are any, no new backing id is registered for it.
        var writers = 0
        /// Entered by each passthrough open, left at its release: what a write open waits on.
        var passthroughLive: DispatchGroup?

        var isIdle: Bool { passthroughOpens == 0 && daemonOpens == 0 && writers == 0 }
    }

    private struct State {
        var inodes: [UInt64: Inode] = [:]
        /// Why passthrough is off for the rest of the mount, once the kernel refused a backing open.
        var refusal: String?
        var fileFallbackLogged = false
        var counts = Counts()
    }

    /// The session's /dev/fuse descriptor, the one the backing-file ioctls go to; -1 until mounted.
    private let device = Atomic<Int32>(-1)
    /// Lock order: a leaf. It is held across the BACKING_OPEN and BACKING_CLOSE ioctls (no disk
    /// I/O: the kernel takes or drops a reference to a file the daemon has open; 1–13 µs
    /// measured), so that an inode never gets two ids, and never while another lock is taken.
    private let state = Mutex(State())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func attach(device fd: Int32) {
        device.store(fd, ordering: .releasing)
    }

    /// Why passthrough is off for the mount, once the kernel refused it; nil while it is on.
    var refusal: String? { state.withLock { $0.refusal } }

    var counts: Counts { state.withLock { $0.counts } }

    /// Backing ids registered now.
    var openBackingIDs: Int { state.withLock { $0.counts.backingOpened - $0.counts.backingClosed } }

    /// Asks the kernel, without registering anything, whether this daemon may register backing
    /// files: a BACKING_OPEN with an invalid flag is refused with EPERM (not negotiated, or no
    /// CAP_SYS_ADMIN in the initial user namespace) before the flag is even looked at, and with
    /// EINVAL otherwise. Turns passthrough off for the mount on a refusal.
    func probe() {
        let result = blobfs_fuse_backing_probe(device.load(ordering: .acquiring))
        let code = errno
        if result >= 0 { _ = blobfs_fuse_backing_close(device.load(ordering: .acquiring), result) }
        guard result < 0, let reason = Self.mountRefusal(code) else { return }
        state.withLock { $0.refusal = $0.refusal ?? reason }
    }

    /// Whether inode `ino` has opens the daemon serves (so a new open of it must be one too).
    func hasDaemonOpens(_ ino: UInt64) -> Bool {
        state.withLock { ($0.inodes[ino]?.daemonOpens ?? 0) > 0 }
    }

    /// How the open of inode `ino` is served: through `backing` (a verified blob's data file of
    /// exactly its size, or nil when the daemon must serve it) where the inode's mode allows.
    func admit(_ ino: UInt64, backing: LocalDataFile?) -> Grant {
        var opened = false
        let (grant, note) = state.withLock { state -> (Grant, String?) in
            var inode = state.inodes[ino] ?? Inode()
            defer { state.inodes[ino] = inode }
            if inode.backingID > 0 {
                // Passthrough opens are live. An open the daemon would serve fails in the kernel
                // (EIO) whatever is answered; serve it as asked and let the kernel refuse it.
                guard backing != nil else {
                    inode.daemonOpens += 1
                    state.counts.daemonOpens += 1
                    return (.daemon, nil)
                }
                inode.passthroughOpens += 1
                inode.passthroughLive?.enter()
                state.counts.passthroughOpens += 1
                return (.passthrough(inode.backingID), nil)
            }
            var note: String?
            // A write open waits for (or holds) the inode: a new passthrough open would make the
            // kernel refuse it (EIO), so readers are served by the daemon until it is released.
            if let backing, inode.daemonOpens == 0, inode.writers == 0, state.refusal == nil {
                let id = blobfs_fuse_backing_open(device.load(ordering: .acquiring), backing.descriptor)
                if id > 0 {
                    inode.backingID = id
                    inode.passthroughOpens = 1
                    let live = DispatchGroup()
                    live.enter()
                    inode.passthroughLive = live
                    state.counts.passthroughOpens += 1
                    state.counts.backingOpened += 1
                    opened = true
                    return (.passthrough(id), nil)
                }
                let code = errno
                if let reason = Self.mountRefusal(code) {
                    state.refusal = reason
                    note = "passthrough off for this mount: \(reason)"
                } else if !state.fileFallbackLogged {
                    state.fileFallbackLogged = true
                    note = "a blob's data file cannot be read through passthrough: the daemon serves it "
                        + "(\(code == ELOOP ? "ELOOP: the store's filesystem is stacked too deep" : String(cString: strerror(code))))"
                }
            }
            inode.daemonOpens += 1
            state.counts.daemonOpens += 1
            return (.daemon, note)
        }
        if let note { logger.warning("\(note)", metadata: ["inode": "\(ino)"]) }
        if case .passthrough(let id) = grant, opened {
            logger.debug("backing file opened", metadata: ["inode": "\(ino)", "backing_id": "\(id)"])
        }
        return grant
    }

    /// The release of an open `admit` granted (or of one whose reply the kernel never took).
    func release(_ ino: UInt64, _ grant: Grant) {
        if case .untracked = grant { return }
        let closed = state.withLock { state -> Int32? in
            guard var inode = state.inodes[ino] else { return nil }
            var closed: Int32?
            switch grant {
            case .untracked: return nil
            case .daemon: inode.daemonOpens -= 1
            case .passthrough:
                inode.passthroughOpens -= 1
                let live = inode.passthroughLive
                if inode.passthroughOpens == 0 {
                    _ = blobfs_fuse_backing_close(device.load(ordering: .acquiring), inode.backingID)
                    closed = inode.backingID
                    inode.backingID = 0
                    inode.passthroughLive = nil
                    state.counts.backingClosed += 1
                }
                // Left after the id is closed: a write open woken by the last leave finds the
                // kernel's passthrough state of the inode gone (it drops it before it sends the
                // RELEASE of the inode's last passthrough file).
                live?.leave()
            }
            state.inodes[ino] = inode.isIdle ? nil : inode
            return closed
        }
        if let closed { logger.debug("backing file closed", metadata: ["inode": "\(ino)", "backing_id": "\(closed)"]) }
    }

    /// A write open of inode `ino` (an identical rewrite of a blob) begins: no new backing id is
    /// registered for the inode until `endWrite`. The kernel refuses (EIO) any open that is not
    /// passthrough while the inode has passthrough opens, so when it has, what the caller must
    /// wait on before it replies is returned: the group their releases leave.
    func beginWrite(_ ino: UInt64) -> DispatchGroup? {
        state.withLock { state in
            var inode = state.inodes[ino] ?? Inode()
            inode.writers += 1
            state.inodes[ino] = inode
            return inode.backingID > 0 ? inode.passthroughLive : nil
        }
    }

    /// The release of a write open `beginWrite` counted (or its refusal).
    func endWrite(_ ino: UInt64) {
        state.withLock { state in
            guard var inode = state.inodes[ino] else { return }
            inode.writers -= 1
            state.inodes[ino] = inode.isIdle ? nil : inode
        }
    }

    /// The errnos of a backing open that mean passthrough cannot work in this mount at all.
    private static func mountRefusal(_ code: Int32) -> String? {
        switch code {
        case EPERM: "the kernel refused it (it needs a daemon with CAP_SYS_ADMIN in the initial user namespace)"
        case ENOTTY, EOPNOTSUPP: "the kernel has no FUSE backing files"
        default: nil
        }
    }
}
