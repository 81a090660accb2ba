import CFuse
import Dispatch
import Glibc
import Storage

/// The libfuse low-level operation table: for each request, a shell that unpacks libfuse's
/// arguments, calls the operation (which decides, and knows nothing of libfuse), and answers
/// once through `FuseRequest`. Errors become errno only in `ErrnoMapping.swift`; what the kernel
/// did not receive is taken back by the operation's `…NotDelivered`. C callbacks cannot capture,
/// so each finds the filesystem through the session's userdata pointer.
func lowLevelOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { userdata, conn in
        guard let userdata, let conn else { return }
        Unmanaged<BlobFileSystem>.fromOpaque(userdata).takeUnretainedValue().configure(conn)
    }
    ops.lookup = { req, parent, name in
        let request = FuseRequest(req!, .lookup)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.lookup(parent: parent, name: String(cString: name!)) }) {
        case .success(let entry?):
            if !request.reply(entry: fs.entryParameters(entry)) { fs.entryNotDelivered(entry) }
        case .success(nil):
            var negative = fuse_entry_param()
            negative.entry_timeout = fs.options.negativeTimeout
            request.reply(entry: negative)
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.forget = { req, ino, count in
        let request = FuseRequest(req!, .forget)
        request.fileSystem.forget(ino, count: count)
        request.replyNone()
    }
    ops.forget_multi = { req, count, forgets in
        let request = FuseRequest(req!, .forgetMulti)
        let fs = request.fileSystem
        for i in 0..<count { fs.forget(forgets![i].ino, count: forgets![i].nlookup) }
        request.replyNone()
    }
    ops.getattr = { req, ino, _ in
        let request = FuseRequest(req!, .getattr)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.getattr(ino: ino) }) {
        case .success(let reply): request.reply(attributes: fs.stat(reply), timeout: fs.timeout(for: reply.node))
        case .failure(let error): fs.fail(request, error)
        }
    }
    ops.readlink = { req, ino in
        let request = FuseRequest(req!, .readlink)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.readlink(ino: ino) }) {
        case .success(let target): request.reply(link: target)
        case .failure(let error): fs.fail(request, error)
        }
    }
    ops.setattr = { req, ino, attributes, toSet, _ in
        let request = FuseRequest(req!, .setattr)
        let fs = request.fileSystem
        let size = toSet & FUSE_SET_ATTR_SIZE != 0 ? Int64(attributes!.pointee.st_size) : nil
        switch Result(catching: { () throws(FileSystemError) in try fs.setattr(ino: ino, size: size) }) {
        case .success(let reply): request.reply(attributes: fs.stat(reply), timeout: fs.timeout(for: reply.node))
        case .failure(let error): fs.fail(request, error)
        }
    }
    ops.open = { req, ino, fi in
        let request = FuseRequest(req!, .open)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.openDeferringCheck(ino: ino, flags: fi!.pointee.flags) }) {
        case .success(.ready(let reply)):
            replyOpen(request, fi!, reply)
        case .success(.afterCheck(let unchecked)) where unchecked.descriptor.size <= BlobFileSystem.inlineOpenCheckLimit:
            // A small blob: hashing it here costs less than handing the reply to another thread.
            switch Result(catching: { () throws(FileSystemError) in try fs.completeOpen(unchecked) }) {
            case .success(let reply): replyOpen(request, fi!, reply)
            case .failure(let error): fs.fail(request, error)
            }
        case .success(.afterCheck(let unchecked)):
            // A blob hashed before its reply (passthrough): about a second per GiB, which would
            // hold one of libfuse's workers. CPU work: a dispatch queue's threads, sized to the CPUs.
            replyOpenLater(request, fi!, on: .dispatchQueue) { () throws(FileSystemError) in try fs.completeOpen(unchecked) }
        case .success(.afterFetch(let unfetched)):
            // A blob that must come from remote storage first: seconds per GiB, or the S3
            // client's deadline when the store stalls, and every other request would wait for a
            // worker meanwhile. Network waits: a thread of its own (libdispatch adds a thread for
            // a blocked one only after a delay, Storage/FetchThreads.swift).
            replyOpenLater(request, fi!, on: .ownThread) { () throws(FileSystemError) in try fs.completeOpen(unfetched) }
        case .success(.afterReaders(let waiting)):
            // A write open waiting (up to seconds) for passthrough readers to close: their
            // RELEASEs come through libfuse's workers, so none of them may wait here.
            replyOpenLater(request, fi!, on: .ownThread) { () throws(FileSystemError) in try fs.completeWriteOpen(waiting) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.read = { req, _, size, offset, fi in
        let request = FuseRequest(req!, .read)
        let fs = request.fileSystem
        let buffer = fs.buffers.take(size: size)
        defer { fs.buffers.give(buffer) }
        let handle = fi!.pointee.fh
        switch Result(catching: { () throws(FileSystemError) in try fs.read(handle: handle, offset: Int64(offset), into: buffer.bytes) }) {
        case .success(let count): request.reply(bytes: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<count]))
        case .failure(let error): fs.fail(request, error)
        }
    }
    ops.release = { req, _, fi in
        let request = FuseRequest(req!, .release)
        request.fileSystem.release(handle: fi!.pointee.fh)
        request.replyOK()
    }
    ops.opendir = { req, ino, fi in
        let request = FuseRequest(req!, .opendir)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.opendir(ino: ino) }) {
        case .success(let reply):
            fs.fill(fi!, with: reply)
            if !request.reply(open: fi!) { fs.openNotDelivered(reply) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.readdir = { req, _, size, offset, fi in
        serveListing(FuseRequest(req!, .readdir), handle: fi!.pointee.fh, size: size, offset: Int64(offset), plus: false)
    }
    ops.readdirplus = { req, _, size, offset, fi in
        serveListing(FuseRequest(req!, .readdirplus), handle: fi!.pointee.fh, size: size, offset: Int64(offset), plus: true)
    }
    ops.releasedir = { req, _, fi in
        let request = FuseRequest(req!, .releasedir)
        request.fileSystem.releasedir(handle: fi!.pointee.fh)
        request.replyOK()
    }
    ops.statfs = { req, _ in
        let request = FuseRequest(req!, .statfs)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.statfs() }) {
        case .success(let info): request.reply(statfs: info)
        case .failure(let error): fs.fail(request, error)
        }
    }
    ops.getxattr = { req, ino, name, size in
        let request = FuseRequest(req!, .getxattr)
        let fs = request.fileSystem
        let name = String(cString: name!)
        serveAttribute(request, Result(catching: { () throws(FileSystemError) in try fs.getxattr(ino: ino, name: name, size: size) }))
    }
    ops.listxattr = { req, ino, size in
        let request = FuseRequest(req!, .listxattr)
        let fs = request.fileSystem
        serveAttribute(request, Result(catching: { () throws(FileSystemError) in try fs.listxattr(ino: ino, size: size) }))
    }
    // Read-write mounts: `user.blobfs.*` is accepted without effect, anything else ENOTSUP
    // (AttributeWrites.swift). Without them libfuse answers ENOSYS, which the kernel turns into
    // EOPNOTSUPP for every later call, `user.blobfs.*` included.
    ops.setxattr = { req, ino, name, _, _, _ in
        let request = FuseRequest(req!, .setxattr)
        let fs = request.fileSystem
        let name = String(cString: name!)
        serveDone(request, Result(catching: { () throws(FileSystemError) in try fs.setxattr(ino: ino, name: name) }))
    }
    ops.removexattr = { req, ino, name in
        let request = FuseRequest(req!, .removexattr)
        let fs = request.fileSystem
        let name = String(cString: name!)
        serveDone(request, Result(catching: { () throws(FileSystemError) in try fs.removexattr(ino: ino, name: name) }))
    }
    ops.flush = { req, _, fi in
        let request = FuseRequest(req!, .flush)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.flush(handle: fi!.pointee.fh) }) {
        case .success: request.replyOK()
        case .failure(let error): fs.fail(request, error)
        }
    }
    // Read-write mounts.
    ops.create = { req, parent, name, _, fi in
        let request = FuseRequest(req!, .create)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.create(parent: parent, name: String(cString: name!)) }) {
        case .success(let reply):
            fs.fill(fi!, with: reply.open)
            if !request.reply(create: fs.entryParameters(reply.entry), file: fi!) { fs.createNotDelivered(reply) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    // Without mknod and symlink the kernel answers ENOSYS ("Function not implemented") for
    // `mkfifo` and `ln -s`; a regular-file mknod (Python's os.mknod) is a create.
    ops.mknod = { req, parent, name, mode, _ in
        let request = FuseRequest(req!, .mknod)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.mknod(parent: parent, name: String(cString: name!), mode: mode) }) {
        case .success(let entry):
            if !request.reply(entry: fs.entryParameters(entry)) { fs.mknodNotDelivered(entry) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.symlink = { req, link, parent, name in
        let request = FuseRequest(req!, .symlink)
        let fs = request.fileSystem
        let (target, name) = (String(cString: link!), String(cString: name!))
        switch Result(catching: { () throws(FileSystemError) in try fs.symlink(target: target, parent: parent, name: name) }) {
        case .success(let entry):
            if !request.reply(entry: fs.entryParameters(entry)) { fs.entryNotDelivered(entry) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.write = { req, _, bytes, size, offset, fi in
        let request = FuseRequest(req!, .write)
        let fs = request.fileSystem
        let bytes = UnsafeRawBufferPointer(start: bytes, count: size)
        switch Result(catching: { () throws(FileSystemError) in try fs.write(handle: fi!.pointee.fh, bytes: bytes, offset: Int64(offset)) }) {
        case .success(let count): request.reply(written: count)
        case .failure(let error): fs.fail(request, error)
        }
    }
    ops.rename = { req, parent, name, newParent, newName, flags in
        let request = FuseRequest(req!, .rename)
        let fs = request.fileSystem
        let (name, newName) = (String(cString: name!), String(cString: newName!))
        serveDone(request, Result(catching: { () throws(FileSystemError) in
            try fs.rename(parent: parent, name: name, newParent: newParent, newName: newName, flags: flags)
        }))
    }
    ops.link = { req, ino, newParent, newName in
        let request = FuseRequest(req!, .link)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.link(ino: ino, newParent: newParent, newName: String(cString: newName!)) }) {
        case .success(let entry):
            if !request.reply(entry: fs.entryParameters(entry)) { fs.entryNotDelivered(entry) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.unlink = { req, parent, name in
        let request = FuseRequest(req!, .unlink)
        let fs = request.fileSystem
        let name = String(cString: name!)
        serveDone(request, Result(catching: { () throws(FileSystemError) in try fs.unlink(parent: parent, name: name) }))
    }
    ops.mkdir = { req, parent, name, _ in
        let request = FuseRequest(req!, .mkdir)
        let fs = request.fileSystem
        switch Result(catching: { () throws(FileSystemError) in try fs.mkdir(parent: parent, name: String(cString: name!)) }) {
        case .success(let entry):
            if !request.reply(entry: fs.entryParameters(entry)) { fs.entryNotDelivered(entry) }
        case .failure(let error):
            fs.fail(request, error)
        }
    }
    ops.rmdir = { req, _, _ in
        let request = FuseRequest(req!, .rmdir)
        let fs = request.fileSystem
        serveDone(request, Result(catching: { () throws(FileSystemError) in try fs.rmdir() }))
    }
    return ops
}

/// An open's answer: its handle and caching flags, with the backing id of a passthrough open;
/// what the kernel did not take is given back.
private func replyOpen(_ request: consuming FuseRequest, _ file: UnsafeMutablePointer<fuse_file_info>, _ reply: OpenReply) {
    let fs = request.fileSystem
    fs.fill(file, with: reply)
    let delivered = if let id = reply.backingID { request.reply(open: file, backingID: id) } else { request.reply(open: file) }
    if !delivered { fs.openNotDelivered(reply) }
}

/// Where an open answered later runs.
private enum LaterThread {
    case dispatchQueue
    case ownThread
}

/// Moves an open off the libfuse worker that received it: `complete` runs on another thread,
/// which replies. libfuse's fuse_file_info lives on its worker's stack, so the answer gets a copy.
/// The session waits for every such open before it is destroyed (`deferredOpens`).
private func replyOpenLater(
    _ request: consuming FuseRequest, _ fi: UnsafeMutablePointer<fuse_file_info>, on thread: LaterThread,
    _ complete: @escaping @Sendable () throws(FileSystemError) -> OpenReply
) {
    let fs = request.fileSystem
    let waiting = WaitingRequest(request)
    let file = fi.pointee
    fs.passthrough.deferredOpens.enter()
    let work: @Sendable () -> Void = {
        defer { fs.passthrough.deferredOpens.leave() }
        let request = waiting.take()
        let info = UnsafeMutablePointer<fuse_file_info>.allocate(capacity: 1)
        defer { info.deallocate() }
        info.initialize(to: file)
        switch Result(catching: complete) {
        case .success(let reply): replyOpen(request, info, reply)
        case .failure(let error): fs.fail(request, error)
        }
    }
    switch thread {
    case .dispatchQueue: DispatchQueue.global().async(execute: work)
    case .ownThread: FetchThreads.start(work)
    }
}

/// A request answered from another thread than the libfuse worker that received it: it moves
/// there whole, and one dropped without being taken still answers EIO (FuseRequest's deinit).
private final class WaitingRequest: @unchecked Sendable {
    // @unchecked: touched by one thread at a time, the worker that stores it and then the one
    // that takes it, ordered by the hand-off (a dispatch queue's, or a thread's start).
    private var request: FuseRequest?

    init(_ request: consuming FuseRequest) {
        self.request = consume request
    }

    func take() -> FuseRequest {
        request.take()!
    }
}

/// readdir and readdirplus: the entries that fit, laid out and sent; the lookups of those the
/// kernel did not receive are taken back.
private func serveListing(_ request: consuming FuseRequest, handle: UInt64, size: Int, offset: Int64, plus: Bool) {
    let fs = request.fileSystem
    let listed: [ListedEntry]
    switch Result(catching: { () throws(FileSystemError) in try fs.readdir(handle: handle, offset: offset, size: size, plus: plus) }) {
    case .success(let entries): listed = entries
    case .failure(let error): return fs.fail(request, error)
    }
    let buffer = fs.buffers.take(size: size)
    defer { fs.buffers.give(buffer) }
    let (used, laidOut) = request.layOut(listed, plus: plus, into: buffer.bytes, fileSystem: fs)
    let delivered = request.reply(bytes: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<used]))
    fs.listingNotDelivered(listed[(delivered ? laidOut : 0)...])
}

/// An extended attribute's value, its size, or why not.
private func serveAttribute(_ request: consuming FuseRequest, _ result: Result<AttributeReply, FileSystemError>) {
    switch result {
    case .success(.size(let size)): request.reply(xattrSize: size)
    case .success(.bytes(let bytes)):
        let fs = request.fileSystem
        let buffer = fs.buffers.take(size: bytes.count)
        defer { fs.buffers.give(buffer) }
        bytes.withUnsafeBytes { buffer.bytes.copyMemory(from: $0) }
        request.reply(bytes: UnsafeRawBufferPointer(buffer.bytes))
    case .failure(let error): request.fileSystem.fail(request, error)
    }
}

/// Operations whose only answer is "done" or why not.
private func serveDone(_ request: consuming FuseRequest, _ result: Result<Void, FileSystemError>) {
    switch result {
    case .success: request.replyOK()
    case .failure(let error): request.fileSystem.fail(request, error)
    }
}

extension BlobFileSystem {
    /// Answers a failed request with its errno, after logging what deserves a line.
    func fail(_ request: consuming FuseRequest, _ error: FileSystemError) {
        let code = errnoValue(for: error)
        if let line = error.logLine, isWorthLogging(code) {
            logger.error("\(line)", metadata: ["errno": "\(code)"])
        }
        request.reply(errno: code)
    }

    /// Negotiates capabilities: no data invalidation on attribute changes (blobs are immutable),
    /// readdirplus, parallel directory operations and cached symbolic links when the kernel has
    /// them.
    func configure(_ conn: UnsafeMutablePointer<fuse_conn_info>) {
        conn.pointee.want &= ~UInt32(bitPattern: FUSE_CAP_AUTO_INVAL_DATA)
        if conn.pointee.capable & UInt32(bitPattern: FUSE_CAP_READDIRPLUS) != 0 {
            conn.pointee.want |= UInt32(bitPattern: FUSE_CAP_READDIRPLUS)
        }
        // O_TRUNC arrives with open instead of as a separate truncation of the blob.
        if conn.pointee.capable & UInt32(bitPattern: FUSE_CAP_ATOMIC_O_TRUNC) != 0 {
            conn.pointee.want |= UInt32(bitPattern: FUSE_CAP_ATOMIC_O_TRUNC)
        }
        // Parallel lookups and listings in one directory, so that one slow lookup (a slow disk,
        // a Redis answering within its deadline) does not queue every other name of `blobs/`
        // behind it. Safe here: the kernel only drops its per-directory lock around LOOKUP and
        // READDIR, and ours only read the disk and take Mutex-guarded state (the inode table,
        // the upload table, the verifier); a listing's snapshot belongs to its open handle.
        // create, rename, unlink and mkdir still hold the directory's VFS lock exclusively, so
        // no lookup or listing of that directory runs beside them; and lookups already ran
        // unlocked beside anything when the kernel revalidated a cached name. readdirplus
        // counts its inode references atomically (see readdir).
        // libfuse before 3.17 never passes this flag on to the kernel (libfuse#861): with
        // Debian 12's 3.14 lookups stay serialised per directory until libfuse is upgraded.
        if conn.pointee.capable & UInt32(bitPattern: FUSE_CAP_PARALLEL_DIROPS) != 0 {
            conn.pointee.want |= UInt32(bitPattern: FUSE_CAP_PARALLEL_DIROPS)
        }
        // The kernel keeps a symbolic link's target in the link's page cache: right, because a
        // tag's node includes its target, so an inode's target never changes (Node.tag).
        if conn.pointee.capable & UInt32(bitPattern: FUSE_CAP_CACHE_SYMLINKS) != 0 {
            conn.pointee.want |= UInt32(bitPattern: FUSE_CAP_CACHE_SYMLINKS)
        }
        if let kib = options.readAheadKiB {
            conn.pointee.max_readahead = UInt32(kib * 1024)
        }
    }
}
