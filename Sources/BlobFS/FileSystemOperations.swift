import CFuse
import Distribution
import Dispatch
import Glibc
import Logging
import Storage

/// The FUSE operations. Every path replies exactly once: a request never answered leaves its
/// caller in an unkillable wait.
extension BlobFileSystem {
    func lookup(_ req: fuse_req_t, parent: UInt64, name: String) {
        guard let parentEntry = inodes[parent] else { return reply(req, errno: ENOENT) }
        do {
            let found: Namespace.Entry?
            switch parentEntry.node {
            case .root:
                found = name == "repo" ? Namespace.Entry(name: name, node: .directory(path: ""), attributes: directoryAttributes) : nil
            case .directory(let path):
                if let upload = uploads.named(name, in: path) {
                    found = Namespace.Entry(name: name, node: .upload(upload.serial), attributes: uploadAttributes(upload))
                } else {
                    found = try namespace.lookup(name, in: path, directoryTime: mountTime).map(withDirectoryMode)
                }
            case .blob, .upload:
                return reply(req, errno: ENOTDIR)
            }
            guard let found else {
                var negative = fuse_entry_param()
                negative.entry_timeout = options.negativeTimeout
                _ = fuse_reply_entry(req, &negative)
                return
            }
            let ino = inodes.reference(found.node, attributes: found.attributes)
            var entry = entryParameters(ino, found.node, found.attributes)
            if fuse_reply_entry(req, &entry) != 0 { inodes.forget(ino, count: 1) }
        } catch {
            reply(req, error: error, context: "lookup \(name)")
        }
    }

    func getattr(_ req: fuse_req_t, ino: UInt64) {
        guard let entry = inodes[ino] else { return reply(req, errno: ENOENT) }
        var st = currentAttributes(entry).stat(ino: ino, node: entry.node, owner: owner)
        _ = fuse_reply_attr(req, &st, timeout(for: entry.node))
    }

    /// Attributes as they are now: an upload grows while it is written.
    func currentAttributes(_ entry: InodeTable.Entry) -> NodeAttributes {
        if case .upload(let serial) = entry.node, let upload = uploads[serial] { return uploadAttributes(upload) }
        return entry.attributes
    }

    func uploadAttributes(_ upload: PendingUpload) -> NodeAttributes {
        if case .committed(let descriptor) = upload.phase {
            return NodeAttributes(size: descriptor.size, modified: upload.modified, descriptor: descriptor)
        }
        return NodeAttributes(size: upload.size, modified: upload.modified)
    }

    func withDirectoryMode(_ entry: Namespace.Entry) -> Namespace.Entry {
        var entry = entry
        entry.attributes.writableDirectories = options.readWrite
        return entry
    }

    func open(_ req: fuse_req_t, ino: UInt64, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let entry = inodes[ino] else { return reply(req, errno: ENOENT) }
        if fi.pointee.flags & O_ACCMODE != O_RDONLY {
            return openForWriting(req, entry: entry, fi: fi)
        }
        if case .upload = entry.node {
            logger.error("an upload in progress cannot be read", metadata: ["inode": "\(ino)"])
            return reply(req, errno: EACCES)
        }
        guard case .blob(let name) = entry.node, let descriptor = entry.attributes.descriptor else {
            return reply(req, errno: EISDIR)
        }
        // An empty data file is only right for the empty digest.
        if descriptor.size == 0 && name.digest != Digester(name.digest.algorithm).digest() {
            logger.error("blob data is empty but its digest is not the empty digest", metadata: ["blob": "\(name)"])
            return reply(req, errno: EIO)
        }
        do {
            // Membership, as storage has it now: the kernel may hold this name longer than the
            // repository links it (another mount or the registry removed it), and a removed blob
            // must not stay readable there. ESTALE makes the kernel look the path up again,
            // which then finds what the repository links now.
            let target: Digest?
            do {
                target = try registry.repository(name.repository).blobs.linkTarget(name.digest)
            } catch BlobError.unknown {
                target = nil
            }
            guard target == descriptor.digest else {
                logger.info("a blob name the kernel held is no longer linked as it was", metadata: [
                    "blob": "\(name)", "was": "\(descriptor.digest)", "now": "\(target.map { "\($0)" } ?? "no link")",
                ])
                forgetName(name)
                return reply(req, errno: ESTALE)
            }
            let reader = try registry.blobStore.open(descriptor)
            // The version opened: what is verified, and what this handle serves. With
            // --no-verify nothing is checked, and no fstat is spent.
            let version = options.verifyReads ? try reader.version() : nil
            var needsCheck = false
            if options.verifyReads {
                switch verifier.known(name.digest, in: version) {
                case .corrupt?:
                    logger.error("refusing a blob that failed verification in this version of its data file", metadata: ["blob": "\(name)"])
                    return reply(req, errno: EIO)
                case .intact?:
                    needsCheck = false
                case nil:
                    needsCheck = descriptor.size > 0
                }
            }
            let handle = Unmanaged.passRetained(OpenBlob(inode: ino, name: name, reader: reader, version: version, needsCheck: needsCheck))
            fi.pointee.fh = UInt64(UInt(bitPattern: handle.toOpaque()))
            // Pages the kernel holds were verified (a corrupt version fails this open, and a
            // handle serves only the version it verified), so they may stay across opens.
            fi.pointee.keep_cache = 1
            if fuse_reply_open(req, fi) != 0 { handle.release() }
        } catch {
            reply(req, error: error, context: "open \(name)")
        }
    }

    /// Makes the kernel forget a blob name it holds (not from a request's thread: see
    /// `invalidate`), so that its next use is a fresh lookup.
    func forgetName(_ name: BlobName) {
        guard let parent = inodes.inode(of: .directory(path: "\(name.repository)/blobs")) else { return }
        invalidate(parent: parent, name: name.digest.description)
    }

    func read(_ req: fuse_req_t, size: Int, offset: Int64, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let handle = openFile(fi) as? OpenBlob else { return reply(req, errno: EBADF) }
        // A handle that needs no check holds a verified version (each read confirms it is still
        // that version) or reads with --no-verify: the hot path takes no lock for verification.
        do {
            if handle.needsCheck.load(ordering: .acquiring) {
                if case .corrupt(let actual) = try verifier.check(handle.reader, as: handle.name.digest, version: handle.version) {
                    blobFailedVerification(handle, actual: actual)
                    return reply(req, errno: EIO)
                }
                handle.needsCheck.store(false, ordering: .releasing)
            }
        } catch {
            dropPages(of: handle)
            return reply(req, error: error, context: "verify \(handle.name)")
        }
        buffers.withBuffer(size: size) { buffer in
            do {
                let n = try handle.reader.read(into: buffer, at: offset)
                // The bytes just read are the verified ones only if the file is still the version
                // that was verified: a write moves its ctime before it changes a byte, so one
                // fstat after the read catches an edit made while the file is open.
                if let version = handle.version, try handle.reader.version() != version {
                    throw BlobError.changed(handle.name.digest, path: handle.reader.path.value)
                }
                _ = fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), n)
            } catch {
                if case BlobError.changed = error { dropPages(of: handle) }
                reply(req, error: error, context: "read \(handle.name) at \(offset)")
            }
        }
    }

    func release(_ req: fuse_req_t, fi: UnsafeMutablePointer<fuse_file_info>) {
        let handle = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!)
        if let write = handle.takeUnretainedValue() as? OpenWrite { finishRelease(write) }
        handle.release()
        _ = fuse_reply_err(req, 0)
    }

    /// The object behind a file handle.
    func openFile(_ fi: UnsafeMutablePointer<fuse_file_info>) -> AnyObject {
        Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).takeUnretainedValue()
    }

    func opendir(_ req: fuse_req_t, ino: UInt64, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let entry = inodes[ino] else { return reply(req, errno: ENOENT) }
        do {
            let entries: [Namespace.Entry]
            switch entry.node {
            case .root: entries = [Namespace.Entry(name: "repo", node: .directory(path: ""), attributes: directoryAttributes)]
            case .directory(let path):
                entries = try namespace.entries(in: path, directoryTime: mountTime).map(withDirectoryMode)
                    + uploads.names(in: path).map {
                        Namespace.Entry(name: $0.name, node: .upload($0.upload.serial), attributes: uploadAttributes($0.upload))
                    }
            case .blob, .upload: return reply(req, errno: ENOTDIR)
            }
            let handle = Unmanaged.passRetained(OpenDirectory(inode: ino, entries: entries))
            fi.pointee.fh = UInt64(UInt(bitPattern: handle.toOpaque()))
            if fuse_reply_open(req, fi) != 0 { handle.release() }
        } catch {
            reply(req, error: error, context: "opendir \(entry.node)")
        }
    }

    /// Serves a listing from `offset`: "." and ".." first, then the snapshot taken at opendir.
    /// With `plus`, each entry carries its attributes and counts as a lookup.
    func readdir(_ req: fuse_req_t, ino: UInt64, size: Int, offset: Int64, fi: UnsafeMutablePointer<fuse_file_info>, plus: Bool) {
        let directory = Unmanaged<OpenDirectory>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).takeUnretainedValue()
        buffers.withBuffer(size: size) { buffer in
            let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            var used = 0
            var index = Int(max(0, offset))
            while index < directory.entries.count + 2 {
                let remaining = size - used
                let next = off_t(index + 1)
                let added: Int
                if index < 2 {
                    let name = index == 0 ? "." : ".."
                    if plus {
                        var dot = fuse_entry_param()  // ino 0: attributes not given, no lookup counted
                        dot.attr.st_ino = UInt(index == 0 ? ino : 1)
                        dot.attr.st_mode = S_IFDIR
                        added = fuse_add_direntry_plus(req, base + used, remaining, name, &dot, next)
                    } else {
                        var st = Glibc.stat()
                        st.st_ino = UInt(index == 0 ? ino : 1)
                        st.st_mode = S_IFDIR
                        added = fuse_add_direntry(req, base + used, remaining, name, &st, next)
                    }
                    if added > remaining { break }
                } else {
                    let entry = directory.entries[index - 2]
                    // A readdirplus entry counts its lookup in the same step that finds or makes
                    // the inode, and takes back only its own count if it does not fit. (Counting
                    // after the entry was added left a moment when a listing of another
                    // directory linking the same blob, or a parallel listing of this one, could
                    // free the uncounted inode.) A plain entry only borrows the number.
                    let child = inodes.reference(entry.node, attributes: entry.attributes, countLookup: plus)
                    if plus {
                        var parameters = entryParameters(child, entry.node, entry.attributes)
                        added = fuse_add_direntry_plus(req, base + used, remaining, entry.name, &parameters, next)
                    } else {
                        var st = entry.attributes.stat(ino: child, node: entry.node, owner: owner)
                        added = fuse_add_direntry(req, base + used, remaining, entry.name, &st, next)
                    }
                    if plus && added > remaining { inodes.forget(child, count: 1) }
                    if !plus { inodes.releaseIfUnreferenced(child) }
                    if added > remaining { break }
                }
                used += added
                index += 1
            }
            _ = fuse_reply_buf(req, base, used)
        }
    }

    func releasedir(_ req: fuse_req_t, fi: UnsafeMutablePointer<fuse_file_info>) {
        Unmanaged<OpenDirectory>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).release()
        _ = fuse_reply_err(req, 0)
    }

    func statfs(_ req: fuse_req_t) {
        var info = statvfs()
        guard statvfs(options.storageRoot, &info) == 0 else { return reply(req, errno: errno) }
        _ = fuse_reply_statfs(req, &info)
    }

    func getxattr(_ req: fuse_req_t, ino: UInt64, name: String, size: Int) {
        guard let entry = inodes[ino] else { return reply(req, errno: ENOENT) }
        // Only user.* attributes exist here: "not supported" for the others (ACLs, SELinux) makes
        // `ls -l` stop asking, which "no such attribute" does not (two round trips per file).
        guard name.hasPrefix("user.") else { return reply(req, errno: EOPNOTSUPP) }
        guard let value = extendedAttributes(entry).first(where: { $0.name == name })?.value else {
            return reply(req, errno: ENODATA)
        }
        replyXattr(req, Array(value.utf8), size: size)
    }

    /// Never fails for a known inode, so `rsync -X` and `cp -a` work on every file.
    func listxattr(_ req: fuse_req_t, ino: UInt64, size: Int) {
        guard let entry = inodes[ino] else { return reply(req, errno: ENOENT) }
        replyXattr(req, extendedAttributes(entry).flatMap { Array($0.name.utf8) + [0] }, size: size)
    }

    func forget(_ ino: UInt64, count: UInt64) {
        inodes.forget(ino, count: count)
    }

    // MARK: - Helpers

    var directoryAttributes: NodeAttributes { NodeAttributes(modified: mountTime, writableDirectories: options.readWrite) }

    func timeout(for node: Node) -> Double {
        switch node {
        case .blob: options.blobTimeout
        case .upload: 0  // it grows, and becomes a blob
        case .root, .directory: options.directoryTimeout
        }
    }

    func entryParameters(_ ino: UInt64, _ node: Node, _ attributes: NodeAttributes) -> fuse_entry_param {
        var entry = fuse_entry_param()
        entry.ino = ino
        entry.attr = attributes.stat(ino: ino, node: node, owner: owner)
        entry.attr_timeout = timeout(for: node)
        entry.entry_timeout = timeout(for: node)
        return entry
    }

    /// A blob's digest, size and media type, as `user.blobfs.*` attributes; directories have none.
    func extendedAttributes(_ entry: InodeTable.Entry) -> [(name: String, value: String)] {
        guard let descriptor = entry.attributes.descriptor else { return [] }
        return [
            ("user.blobfs.digest", descriptor.digest.description),
            ("user.blobfs.size", String(descriptor.size)),
            ("user.blobfs.mediatype", descriptor.mediaType),
        ]
    }

    func replyXattr(_ req: fuse_req_t, _ value: [UInt8], size: Int) {
        if size == 0 {
            _ = fuse_reply_xattr(req, value.count)
        } else if size < value.count {
            reply(req, errno: ERANGE)
        } else {
            _ = value.withUnsafeBytes { fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), value.count) }
        }
    }

    /// Logs the mismatch (the blob is refused from now on) and drops any cached pages of it.
    func blobFailedVerification(_ handle: OpenBlob, actual: Digest) {
        let descriptor = handle.reader.descriptor
        logger.error("blob content does not match its name: reads fail with EIO", metadata: [
            "blob": "\(handle.name)", "path": "\(options.storageRoot)\(handle.reader.path)",
            "expected": "\(handle.name.digest)", "actual": "\(actual)", "canonical": "\(descriptor.digest)",
        ])
        dropPages(of: handle)
    }

    /// Drops the kernel's cached pages of a handle's inode: they may hold bytes of a version
    /// that is no longer (or never was) verified.
    func dropPages(of handle: OpenBlob) {
        guard let session = session.withLock({ $0 }) else { return }
        let inode = handle.inode
        // Not from this request's thread: invalidating pages while a read of them is in flight
        // can deadlock the kernel.
        DispatchQueue.global().async {
            _ = fuse_lowlevel_notify_inval_inode(session.pointer, inode, 0, 0)
        }
    }

    func reply(_ req: fuse_req_t, errno code: Int32) {
        _ = fuse_reply_err(req, code)
    }

    func reply(_ req: fuse_req_t, error: any Error, context: String) {
        let code = errnoValue(for: error)
        if isWorthLogging(code) {
            logger.error("\(context): \(error)", metadata: ["errno": "\(code)"])
        }
        _ = fuse_reply_err(req, code)
    }
}
