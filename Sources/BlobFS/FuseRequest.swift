import CFuse
import Glibc
import Instrumentation
import Logging

/// One kernel request waiting for its answer. A request that is never answered leaves its
/// caller in an unkillable wait, and one answered twice corrupts libfuse's state; so the rule
/// "reply exactly once" is in the type, as in fuser's reply objects: the request cannot be
/// copied, every `reply…` consumes it (a second reply does not compile), and a request dropped
/// without a reply answers EIO and logs which operation forgot it.
///
/// Each `reply…` returns whether the kernel took the answer: false when the request was
/// interrupted meanwhile, and then whatever the answer handed over (an inode's lookup count, a
/// file handle) must be taken back by the caller.
///
/// With metrics on, every reply is counted here by operation and errno, with the time since the
/// request arrived (docs/architecture.md, "Metrics"); with metrics off `started` is 0 and the
/// only cost is one atomic load at arrival.
struct FuseRequest: ~Copyable {
    private let request: fuse_req_t
    /// The operation, for the log line of a request dropped without a reply and for metrics.
    let operation: FuseOperation
    /// When the request arrived (monotonic nanoseconds), or 0 when metrics are off.
    private let started: UInt64

    init(_ request: fuse_req_t, _ operation: FuseOperation) {
        self.request = request
        self.operation = operation
        started = BlobfsMetrics.current == nil ? 0 : BlobfsMetrics.now()
    }

    /// Counts the reply just sent (`code` 0 for success).
    @inline(__always)
    private static func count(_ operation: FuseOperation, _ started: UInt64, _ code: Int32) {
        if started != 0 { BlobfsMetrics.current?.replied(operation, started: started, errno: code) }
    }

    deinit {
        Self.unansweredLogger.error("request not answered: replying EIO", metadata: ["operation": "\(operation)"])
        _ = fuse_reply_err(request, errnoValue(for: .notAnswered))
        Self.count(operation, started, errnoValue(for: .notAnswered))
    }

    private static let unansweredLogger = Logger(label: "blobfs.fs")

    /// The session's filesystem (the userdata given to `fuse_session_new`).
    var fileSystem: BlobFileSystem {
        Unmanaged<BlobFileSystem>.fromOpaque(fuse_req_userdata(request)!).takeUnretainedValue()
    }

    // MARK: - Replies

    @discardableResult
    consuming func reply(errno code: Int32) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_err(request, code) == 0
        Self.count(operation, started, code)
        return delivered
    }

    /// "Done" for operations whose only answer is success (flush, release, unlink, rename).
    @discardableResult
    consuming func replyOK() -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_err(request, 0) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    /// No answer at all: forget and forget_multi, which the kernel never waits for.
    consuming func replyNone() {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        fuse_reply_none(request)
        Self.count(operation, started, 0)
    }

    @discardableResult
    consuming func reply(entry: fuse_entry_param) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        var entry = entry
        let delivered = fuse_reply_entry(request, &entry) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    @discardableResult
    consuming func reply(attributes: Glibc.stat, timeout: Double) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        var attributes = attributes
        let delivered = fuse_reply_attr(request, &attributes, timeout) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    @discardableResult
    consuming func reply(open file: UnsafeMutablePointer<fuse_file_info>) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_open(request, file) == 0
        Self.count(operation, started, 0)
        if started != 0, operation == .open { BlobfsMetrics.current?.daemonOpens.increment() }
        return delivered
    }

    /// An open the kernel serves through backing file `id` (passthrough): the writev hook adds
    /// the id to libfuse's own reply (PassthroughHooks.swift), which this thread writes.
    @discardableResult
    consuming func reply(open file: UnsafeMutablePointer<fuse_file_info>, backingID id: Int32) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        PendingBackingID.current = id
        let delivered = fuse_reply_open(request, file) == 0
        if delivered && PendingBackingID.current != 0 {
            // libfuse wrote the reply some other way than the hook expects: the kernel took a
            // plain open, which the daemon serves correctly, but say so: passthrough is broken.
            Self.unansweredLogger.error("an open reply went out without its backing id", metadata: ["id": "\(id)"])
        }
        PendingBackingID.current = 0
        Self.count(operation, started, 0)
        if started != 0 { BlobfsMetrics.current?.passthroughOpens.increment() }
        return delivered
    }

    @discardableResult
    consuming func reply(create entry: fuse_entry_param, file: UnsafeMutablePointer<fuse_file_info>) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        var entry = entry
        let delivered = fuse_reply_create(request, &entry, file) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    @discardableResult
    consuming func reply(bytes: UnsafeRawBufferPointer) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_buf(request, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count) == 0
        Self.count(operation, started, 0)
        if started != 0, operation == .read { BlobfsMetrics.current?.servedBytes.increment(by: bytes.count) }
        return delivered
    }

    /// A symbolic link's target.
    @discardableResult
    consuming func reply(link target: String) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_readlink(request, target) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    @discardableResult
    consuming func reply(written count: Int) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_write(request, count) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    @discardableResult
    consuming func reply(statfs info: statvfs) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        var info = info
        let delivered = fuse_reply_statfs(request, &info) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    /// The size an extended attribute's value or list needs (a call with size 0 asks for it).
    @discardableResult
    consuming func reply(xattrSize size: Int) -> Bool {
        let request = self.request
        let (operation, started) = (self.operation, self.started)
        discard self
        let delivered = fuse_reply_xattr(request, size) == 0
        Self.count(operation, started, 0)
        return delivered
    }

    /// Lays out `entries` in the kernel's directory format from the start of `buffer`; returns the
    /// bytes used and how many entries fit (all of them, when the operation measured them with
    /// `DirectoryEntrySize`; fewer only if libfuse's layout ever disagreed with that measure).
    borrowing func layOut(
        _ entries: [ListedEntry], plus: Bool, into buffer: UnsafeMutableRawBufferPointer, fileSystem: BlobFileSystem
    ) -> (used: Int, laidOut: Int) {
        let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
        var used = 0
        for (index, entry) in entries.enumerated() {
            let remaining = buffer.count - used
            let added: Int
            if plus {
                var parameters = fileSystem.entryParameters(for: entry)
                added = fuse_add_direntry_plus(request, base + used, remaining, entry.name, &parameters, off_t(entry.nextOffset))
            } else {
                var st = fileSystem.listingStat(for: entry)
                added = fuse_add_direntry(request, base + used, remaining, entry.name, &st, off_t(entry.nextOffset))
            }
            if added > remaining { return (used, index) }
            used += added
        }
        return (used, entries.count)
    }
}
