import CFuse
import Glibc

/// The libfuse low-level operation table. C callbacks cannot capture, so each one finds the
/// filesystem through the session's userdata pointer.
func lowLevelOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { userdata, conn in
        guard let userdata, let conn else { return }
        Unmanaged<BlobFileSystem>.fromOpaque(userdata).takeUnretainedValue().configure(conn)
    }
    ops.lookup = { req, parent, name in
        fileSystem(req).lookup(req!, parent: parent, name: String(cString: name!))
    }
    ops.forget = { req, ino, count in
        fileSystem(req).forget(ino, count: count)
        fuse_reply_none(req)
    }
    ops.forget_multi = { req, count, forgets in
        let fs = fileSystem(req)
        for i in 0..<count {
            fs.forget(forgets![i].ino, count: forgets![i].nlookup)
        }
        fuse_reply_none(req)
    }
    ops.getattr = { req, ino, _ in
        fileSystem(req).getattr(req!, ino: ino)
    }
    ops.open = { req, ino, fi in
        fileSystem(req).open(req!, ino: ino, fi: fi!)
    }
    ops.read = { req, _, size, offset, fi in
        fileSystem(req).read(req!, size: size, offset: Int64(offset), fi: fi!)
    }
    ops.release = { req, _, fi in
        fileSystem(req).release(req!, fi: fi!)
    }
    ops.opendir = { req, ino, fi in
        fileSystem(req).opendir(req!, ino: ino, fi: fi!)
    }
    ops.readdir = { req, ino, size, offset, fi in
        fileSystem(req).readdir(req!, ino: ino, size: size, offset: Int64(offset), fi: fi!, plus: false)
    }
    ops.readdirplus = { req, ino, size, offset, fi in
        fileSystem(req).readdir(req!, ino: ino, size: size, offset: Int64(offset), fi: fi!, plus: true)
    }
    ops.releasedir = { req, _, fi in
        fileSystem(req).releasedir(req!, fi: fi!)
    }
    ops.statfs = { req, _ in
        fileSystem(req).statfs(req!)
    }
    ops.getxattr = { req, ino, name, size in
        fileSystem(req).getxattr(req!, ino: ino, name: String(cString: name!), size: size)
    }
    ops.listxattr = { req, ino, size in
        fileSystem(req).listxattr(req!, ino: ino, size: size)
    }
    ops.flush = { req, _, fi in
        fileSystem(req).flush(req!, fi: fi!)
    }
    // Read-write mounts.
    ops.create = { req, parent, name, _, fi in
        fileSystem(req).create(req!, parent: parent, name: String(cString: name!), fi: fi!)
    }
    // Without these two the kernel answers ENOSYS ("Function not implemented") for `mkfifo` and
    // `ln -s`; a regular-file mknod (Python's os.mknod) is a create.
    ops.mknod = { req, parent, name, mode, _ in
        fileSystem(req).mknod(req!, parent: parent, name: String(cString: name!), mode: mode)
    }
    ops.symlink = { req, _, parent, name in
        fileSystem(req).symlink(req!, parent: parent, name: String(cString: name!))
    }
    ops.write = { req, _, buffer, size, offset, fi in
        fileSystem(req).write(req!, bytes: UnsafeRawBufferPointer(start: buffer, count: size), offset: Int64(offset), fi: fi!)
    }
    ops.rename = { req, parent, name, newParent, newName, flags in
        fileSystem(req).rename(
            req!, parent: parent, name: String(cString: name!), newParent: newParent, newName: String(cString: newName!), flags: flags)
    }
    ops.unlink = { req, parent, name in
        fileSystem(req).unlink(req!, parent: parent, name: String(cString: name!))
    }
    ops.mkdir = { req, parent, name, _ in
        fileSystem(req).mkdir(req!, parent: parent, name: String(cString: name!))
    }
    ops.rmdir = { req, _, _ in
        // Repositories and name components are never removed through the mount.
        _ = fuse_reply_err(req, fileSystem(req).options.readWrite ? EPERM : EROFS)
    }
    ops.setattr = { req, ino, attributes, toSet, _ in
        fileSystem(req).setattr(req!, ino: ino, attributes: attributes!, toSet: toSet)
    }
    return ops
}

private func fileSystem(_ req: fuse_req_t?) -> BlobFileSystem {
    Unmanaged<BlobFileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

extension BlobFileSystem {
    /// Negotiates capabilities: no data invalidation on attribute changes (blobs are immutable),
    /// readdirplus and parallel directory operations when the kernel has them.
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
        if let kib = options.readAheadKiB {
            conn.pointee.max_readahead = UInt32(kib * 1024)
        }
    }
}
