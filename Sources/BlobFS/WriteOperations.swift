import CFuse
import Distribution
import Dispatch
import Glibc
import Logging
import Storage

/// The operations of read-write mounts (design §5). On a read-only mount the kernel refuses
/// every mutation with EROFS before it reaches us; these check again all the same.
extension BlobFileSystem {
    func create(_ req: fuse_req_t, parent: UInt64, name: String, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        guard let upload = startUpload(req, parent: parent, name: name) else { return }
        let ino = inodes.reference(.upload(upload.serial), attributes: uploadAttributes(upload))
        var entry = entryParameters(ino, .upload(upload.serial), uploadAttributes(upload))
        let handle = Unmanaged.passRetained(OpenWrite(.upload(upload)))
        fi.pointee.fh = UInt64(UInt(bitPattern: handle.toOpaque()))
        fi.pointee.direct_io = 1  // nothing of an upload belongs in the page cache
        if fuse_reply_create(req, &entry, fi) != 0 {
            handle.release()
            upload.cancel(.notCreated)
            uploads.remove(upload)
            inodes.forget(ino, count: 1)
        }
    }

    /// mknod(2): a regular file is a create followed by its last close (an empty file: committed
    /// now under the empty digest, refused with EIO under any other digest; a temporary name stays
    /// an upload for the open that follows). FIFOs, devices and sockets cannot become blobs: EPERM.
    func mknod(_ req: fuse_req_t, parent: UInt64, name: String, mode: mode_t) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        guard mode & S_IFMT == S_IFREG || mode & S_IFMT == 0 else {
            return reply(req, error: WriteRefusal.specialFile(name: name, mode: mode), context: "mknod in \(directoryName(parent))")
        }
        guard let upload = startUpload(req, parent: parent, name: name) else { return }
        guard let digest = upload.digest else {
            let ino = inodes.reference(.upload(upload.serial), attributes: uploadAttributes(upload))
            var entry = entryParameters(ino, .upload(upload.serial), uploadAttributes(upload))
            if fuse_reply_entry(req, &entry) != 0 {
                upload.cancel(.notCreated)
                uploads.remove(upload)
                inodes.forget(ino, count: 1)
            }
            return
        }
        defer { uploads.remove(upload) }
        do {
            try upload.commitIfComplete(as: digest)
            invalidate(parent: parent, name: name)
            guard let found = try namespace.lookup(name, in: upload.directory, directoryTime: mountTime) else {
                return reply(req, errno: EIO)
            }
            let ino = inodes.reference(found.node, attributes: found.attributes)
            var entry = entryParameters(ino, found.node, found.attributes)
            if fuse_reply_entry(req, &entry) != 0 { inodes.forget(ino, count: 1) }
        } catch {
            upload.cancel(.lastCloseWithoutMatch)
            reply(req, error: error, context: "mknod \(upload.directory)/\(name)")
        }
    }

    /// `ln -s`: a store holds no symbolic links.
    func symlink(_ req: fuse_req_t, parent: UInt64, name: String) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        reply(req, error: WriteRefusal.symbolicLink(name: name), context: "symlink in \(directoryName(parent))")
    }

    /// The upload behind a new file `name` in `parent`, registered in the upload table; or nil,
    /// after replying why not: EPERM outside a repository's `blobs/`, EINVAL for a name that can
    /// never become a blob (UploadName), so that nothing is accepted only to be thrown away.
    private func startUpload(_ req: fuse_req_t, parent: UInt64, name: String) -> PendingUpload? {
        guard let parentEntry = inodes[parent], case .directory(let path) = parentEntry.node,
            let repository = namespace.repositoryOwningBlobs(path)
        else {
            logger.error("files can only be created in a repository's blobs directory", metadata: ["name": "\(name)"])
            reply(req, errno: EPERM)
            return nil
        }
        let digest: Digest?
        switch UploadName.classify(name) {
        case .digest(let d): digest = d
        case .temporary: digest = nil
        case .refused(let refusal):
            reply(req, error: refusal, context: "refusing a new file in \(path)")
            return nil
        }
        do {
            let upload = try PendingUpload(
                serial: uploads.nextSerial(), repository: repository, parent: parent, directory: path, name: name, digest: digest,
                logger: logger)
            uploads.add(upload)
            return upload
        } catch {
            reply(req, error: error, context: "create \(path)/\(name)")
            return nil
        }
    }

    /// Writing to an existing file: continuing an upload of this mount, or — with O_TRUNC — a
    /// rewrite of a blob, which can only be the same bytes again.
    func openForWriting(_ req: fuse_req_t, entry: InodeTable.Entry, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        let target: OpenWrite.Target
        switch entry.node {
        case .upload(let serial):
            guard let upload = uploads[serial], case .writing = upload.phase else { return reply(req, errno: ENOENT) }
            target = .upload(upload)
        case .blob:
            guard fi.pointee.flags & O_TRUNC != 0, let descriptor = entry.attributes.descriptor else {
                logger.error("blobs never change: open them for writing only with O_TRUNC, to write the same bytes")
                return reply(req, errno: EPERM)
            }
            target = .rewrite(IdenticalRewrite(descriptor: descriptor))
        case .root, .directory:
            return reply(req, errno: EISDIR)
        }
        let handle = Unmanaged.passRetained(OpenWrite(target))
        fi.pointee.fh = UInt64(UInt(bitPattern: handle.toOpaque()))
        fi.pointee.direct_io = 1
        if fuse_reply_open(req, fi) != 0 { handle.release() }
    }

    func write(_ req: fuse_req_t, bytes: UnsafeRawBufferPointer, offset: Int64, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let handle = openFile(fi) as? OpenWrite else { return reply(req, errno: EBADF) }
        do {
            switch handle.target {
            case .upload(let upload): try upload.write(bytes, at: offset)
            case .rewrite(let rewrite): try rewrite.write(bytes, at: offset)
            }
            _ = fuse_reply_write(req, bytes.count)
        } catch {
            reply(req, error: error, context: "write at \(offset)")
        }
    }

    /// close(2): a file created under a digest name is verified and committed here, so that a
    /// mismatch is what close reports (release's errors reach nobody).
    func flush(_ req: fuse_req_t, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let handle = openFile(fi) as? OpenWrite else { return reply(req, errno: 0) }
        do {
            switch handle.target {
            case .upload(let upload):
                if let digest = upload.digest {
                    try upload.commitIfComplete(as: digest)
                    invalidate(parent: upload.parent, name: upload.name)
                }
            case .rewrite(let rewrite):
                try rewrite.check()
            }
            reply(req, errno: 0)
        } catch {
            reply(req, error: error, context: "close")
        }
    }

    /// The last close: an upload under a digest name that was not committed is cancelled (its
    /// close already reported the mismatch); a temporary file stays, waiting for its rename.
    func finishRelease(_ handle: OpenWrite) {
        guard case .upload(let upload) = handle.target else { return }
        switch upload.phase {
        case .writing where upload.digest != nil:
            upload.cancel(.lastCloseWithoutMatch)
            uploads.remove(upload)
        case .writing:
            break
        case .committed, .ended:
            uploads.remove(upload)
        }
    }

    func rename(_ req: fuse_req_t, parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        let renameExchange: UInt32 = 1 << 1  // RENAME_EXCHANGE, from <linux/fs.h>
        guard flags & renameExchange == 0 else { return reply(req, errno: EINVAL) }
        guard case .directory(let path)? = inodes[parent]?.node, case .directory(let newPath)? = inodes[newParent]?.node else {
            return reply(req, errno: ENOENT)
        }
        guard let upload = uploads.named(name, in: path) else {
            logger.error("only a file being written can be renamed: blobs and directories are fixed", metadata: ["name": "\(name)"])
            return reply(req, errno: namespaceHas(name, in: path) ? EPERM : ENOENT)
        }
        guard newPath == path else {
            return reply(req, error: WriteRefusal.renameOutOfItsDirectory(name: name, from: path, to: newPath), context: "rename")
        }
        switch UploadName.classify(newName) {
        case .digest(let digest):
            do {
                try commit(upload, as: digest)
                uploads.remove(upload)
                invalidate(parent: parent, name: name)
                reply(req, errno: 0)
            } catch {
                uploads.remove(upload)
                invalidate(parent: parent, name: name)
                reply(req, error: error, context: "rename \(path)/\(name) to \(newName)")
            }
        case .temporary:
            reply(req, error: WriteRefusal.renameToTemporaryName(from: name, to: newName), context: "rename in \(path)")
        case .refused(let refusal):
            reply(req, error: refusal, context: "refusing to rename \(name.debugDescription) in \(path)")
        }
    }

    func unlink(_ req: fuse_req_t, parent: UInt64, name: String) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        guard case .directory(let path)? = inodes[parent]?.node else { return reply(req, errno: ENOENT) }
        if let upload = uploads.named(name, in: path) {
            upload.cancel(.unlinked)
            uploads.remove(upload)
            return reply(req, errno: 0)
        }
        guard let repository = namespace.repositoryOwningBlobs(path), case .digest(let digest) = UploadName.classify(name) else {
            return reply(req, errno: namespaceHas(name, in: path) ? EPERM : ENOENT)
        }
        guard options.allowDelete else {
            logger.error("deletes are disabled (mount with --allow-delete)", metadata: ["blob": "\(path)/\(name)"])
            return reply(req, errno: EPERM)
        }
        do {
            // The registry's semantics: this repository's link goes; the data stays for GC.
            try repository.blobs.delete(digest)
            reply(req, errno: 0)
        } catch {
            reply(req, error: error, context: "unlink \(path)/\(name)")
        }
    }

    func mkdir(_ req: fuse_req_t, parent: UInt64, name: String) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        guard case .directory(let path)? = inodes[parent]?.node else { return reply(req, errno: EPERM) }
        let child = path.isEmpty ? name : path + "/" + name
        do {
            if name == "blobs", !path.isEmpty, let repository = try? RepositoryName(path) {
                // `mkdir <name>/blobs` makes <name> a repository.
                guard !namespace.isRepository(path) else { return reply(req, errno: EEXIST) }
                try registry.createRepository(repository)
            } else {
                let prefix: RepositoryName
                do { prefix = try RepositoryName(child) } catch {
                    logger.error("refusing an invalid repository name: \(error)")
                    return reply(req, errno: EINVAL)
                }
                guard !namespaceHas(name, in: path) else { return reply(req, errno: EEXIST) }
                try registry.createNamePrefix(prefix)
            }
            guard let found = try namespace.lookup(name, in: path, directoryTime: mountTime).map(withDirectoryMode) else {
                return reply(req, errno: EIO)
            }
            let ino = inodes.reference(found.node, attributes: found.attributes)
            var entry = entryParameters(ino, found.node, found.attributes)
            if fuse_reply_entry(req, &entry) != 0 { inodes.forget(ino, count: 1) }
        } catch {
            reply(req, error: error, context: "mkdir \(child)")
        }
    }

    /// Attribute changes have no effect (blobs are 0444 by definition; times and owners are the
    /// store's), but succeed, so that `rsync -a`, `cp -a` and `tar -x` do not fail.
    func setattr(_ req: fuse_req_t, ino: UInt64, attributes: UnsafeMutablePointer<stat>, toSet: Int32) {
        guard options.readWrite else { return reply(req, errno: EROFS) }
        guard let entry = inodes[ino] else { return reply(req, errno: ENOENT) }
        if toSet & FUSE_SET_ATTR_SIZE != 0 && Int64(attributes.pointee.st_size) != currentAttributes(entry).size {
            switch entry.node {
            case .upload(let serial):
                // cp and rsync end a sparse file's trailing hole with ftruncate.
                guard let upload = uploads[serial] else { return reply(req, errno: ENOENT) }
                do { try upload.extend(to: Int64(attributes.pointee.st_size)) } catch {
                    return reply(req, error: error, context: "truncate \(upload.directory)/\(upload.name)")
                }
            case .blob where attributes.pointee.st_size == 0:
                // Truncating a blob before rewriting it (no atomic O_TRUNC): what is written next
                // is checked against the blob's digest.
                break
            default:
                return reply(req, errno: EINVAL)
            }
        }
        var st = currentAttributes(entry).stat(ino: ino, node: entry.node, owner: owner)
        _ = fuse_reply_attr(req, &st, timeout(for: entry.node))
    }

    // MARK: - Helpers

    /// Commits and, once the blob exists, makes the kernel forget the names it has cached.
    func commit(_ upload: PendingUpload, as digest: Digest) throws {
        _ = try upload.commit(as: digest)
        invalidate(parent: upload.parent, name: digest.description)
        invalidate(parent: upload.parent, name: upload.name)
    }

    /// Drops the kernel's cached entry for a name, off the request's thread (a notice sent while
    /// the kernel waits for this request could deadlock).
    func invalidate(parent: UInt64, name: String) {
        guard let session = session.withLock({ $0 }) else { return }
        DispatchQueue.global().async {
            _ = name.withCString { fuse_lowlevel_notify_inval_entry(session.pointer, parent, $0, strlen($0)) }
        }
    }

    /// A directory inode's path, for log lines ("?" for an inode that is not a directory).
    func directoryName(_ ino: UInt64) -> String {
        guard case .directory(let path)? = inodes[ino]?.node else { return "?" }
        return path.isEmpty ? "repo" : path
    }

    func namespaceHas(_ name: String, in path: String) -> Bool {
        ((try? namespace.lookup(name, in: path, directoryTime: mountTime)) ?? nil) != nil
    }
}
