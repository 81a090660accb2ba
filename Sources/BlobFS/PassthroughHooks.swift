import CFuse
import Glibc
import Synchronization

/// libfuse 3.14 has no passthrough API, but every request it reads and every reply it writes go
/// through the session's custom I/O (`fuse_session_custom_io`, public since 3.0). These hooks
/// watch the kernel's INIT request and patch two of libfuse's own replies in place on their way
/// to the kernel: the INIT reply gets the passthrough flag (when the kernel offered it), and an
/// OPEN reply gets `FOPEN_PASSTHROUGH` and a backing id (when the thread sending it set one).
/// Nothing else is touched (docs/architecture.md, "Passthrough").
final class PassthroughNegotiation: Sendable {
    /// What became of passthrough at INIT.
    enum Outcome: Int, Sendable {
        /// INIT has not been answered yet.
        case pending
        /// The INIT reply asked for passthrough.
        case negotiated
        /// The kernel's INIT did not offer it (a kernel before 6.9, or without CONFIG_FUSE_PASSTHROUGH).
        case notOffered
        /// The writeback cache was negotiated, which the kernel does not combine with passthrough.
        case writebackCache
        /// libfuse answered INIT with an error, or a reply too short to carry the flags.
        case initFailed
    }

    /// `max_stack_depth` to ask for: 1, or 2 when the store itself is on a stacking filesystem
    /// (overlayfs); then the mount can no longer be stacked under another overlay.
    private let stackDepth = Atomic<UInt32>(1)
    /// The unique of the kernel's INIT request until its reply went out; 0 otherwise.
    private let initUnique = Atomic<UInt64>(0)
    private let offered = Atomic<Bool>(false)
    private let outcomeValue = Atomic<Int>(Outcome.pending.rawValue)

    init(stackDepth: UInt32 = 1) {
        setStackDepth(stackDepth)
    }

    /// Set before the session serves (the store's filesystem is known once mounted).
    func setStackDepth(_ depth: UInt32) {
        stackDepth.store(min(max(depth, 1), BLOBFS_FUSE_MAX_STACK_DEPTH), ordering: .relaxed)
    }

    var outcome: Outcome { Outcome(rawValue: outcomeValue.load(ordering: .acquiring))! }
    var isNegotiated: Bool { outcome == .negotiated }

    /// The read hook's part: notes the INIT request and whether it offers passthrough.
    func noteRequest(_ bytes: UnsafeRawBufferPointer) {
        let headerSize = MemoryLayout<blobfs_fuse_in_header>.size
        guard bytes.count >= headerSize, let base = bytes.baseAddress else { return }
        let header = base.loadUnaligned(as: blobfs_fuse_in_header.self)
        guard header.opcode == BLOBFS_FUSE_INIT, header.unique != 0 else { return }
        var offers = false
        // A kernel before 7.36 sends a 16-byte init_in without flags2: it offers nothing.
        if bytes.count >= headerSize + MemoryLayout<blobfs_fuse_init_in>.size {
            let body = base.loadUnaligned(fromByteOffset: headerSize, as: blobfs_fuse_init_in.self)
            offers = body.flags & BLOBFS_FUSE_INIT_EXT != 0 && body.flags2 & BLOBFS_FUSE_PASSTHROUGH_FLAGS2 != 0
        }
        offered.store(offers, ordering: .relaxed)
        initUnique.store(header.unique, ordering: .releasing)
    }

    /// The writev hook's part: patches libfuse's INIT reply, or an OPEN reply this thread marked
    /// with a backing id (`PendingBackingID`). Error replies, notifications (unique 0) and every
    /// other reply pass untouched.
    func patchReply(_ iov: UnsafeMutablePointer<iovec>, count: Int) {
        guard count >= 1, iov[0].iov_len >= MemoryLayout<blobfs_fuse_out_header>.size,
            let header = iov[0].iov_base?.assumingMemoryBound(to: blobfs_fuse_out_header.self),
            header.pointee.unique != 0
        else { return }
        let pendingInit = initUnique.load(ordering: .acquiring)
        if pendingInit != 0 && header.pointee.unique == pendingInit {
            initUnique.store(0, ordering: .relaxed)
            outcomeValue.store(patchInit(header.pointee, iov, count: count).rawValue, ordering: .releasing)
            return
        }
        let id = PendingBackingID.current
        guard id > 0, header.pointee.error == 0, count == 2,
            iov[1].iov_len == MemoryLayout<blobfs_fuse_open_out>.size,
            let body = iov[1].iov_base?.assumingMemoryBound(to: blobfs_fuse_open_out.self)
        else { return }
        body.pointee.open_flags |= BLOBFS_FOPEN_PASSTHROUGH
        body.pointee.backing_id = id
        PendingBackingID.current = 0  // patched: the sender sees it was
    }

    private func patchInit(_ header: blobfs_fuse_out_header, _ iov: UnsafeMutablePointer<iovec>, count: Int) -> Outcome {
        guard header.error == 0, count >= 2, iov[1].iov_len >= MemoryLayout<blobfs_fuse_init_out>.size,
            let body = iov[1].iov_base?.assumingMemoryBound(to: blobfs_fuse_init_out.self)
        else { return .initFailed }
        guard offered.load(ordering: .relaxed) else { return .notOffered }
        guard body.pointee.flags & BLOBFS_FUSE_WRITEBACK_CACHE == 0 else { return .writebackCache }
        // flags2 counts only with FUSE_INIT_EXT (libfuse 3.14 sets it itself when the kernel sent it).
        body.pointee.flags |= BLOBFS_FUSE_INIT_EXT
        body.pointee.flags2 |= BLOBFS_FUSE_PASSTHROUGH_FLAGS2
        body.pointee.max_stack_depth = stackDepth.load(ordering: .relaxed)
        return .negotiated
    }

    /// Installs the hooks on a mounted session's own /dev/fuse descriptor. The hooks find this
    /// object through the session's userdata, the `BlobFileSystem` (libfuse passes it to them).
    static func install(on session: OpaquePointer) -> Bool {
        var io = fuse_custom_io()
        io.read = { fd, buffer, length, userdata in
            let n = Glibc.read(fd, buffer, length)
            if n > 0, let buffer, let userdata {
                Unmanaged<BlobFileSystem>.fromOpaque(userdata).takeUnretainedValue().passthrough.negotiation
                    .noteRequest(UnsafeRawBufferPointer(start: buffer, count: n))
            }
            return n
        }
        io.writev = { fd, iov, count, userdata in
            if let iov, let userdata {
                Unmanaged<BlobFileSystem>.fromOpaque(userdata).takeUnretainedValue().passthrough.negotiation
                    .patchReply(iov, count: Int(count))
            }
            return Glibc.writev(fd, iov, count)
        }
        return fuse_session_custom_io(session, &io, fuse_session_fd(session)) == 0
    }
}

/// The backing id for the OPEN reply this thread is about to send. libfuse writes a reply on the
/// thread that calls `fuse_reply_open`, so a thread-local carries the id from `FuseRequest` to the
/// writev hook, which clears it once it patched the reply.
enum PendingBackingID {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key left")
        return key
    }()

    static var current: Int32 {
        get { Int32(truncatingIfNeeded: Int(bitPattern: pthread_getspecific(key))) }
        set { pthread_setspecific(key, UnsafeRawPointer(bitPattern: Int(newValue))) }
    }
}
