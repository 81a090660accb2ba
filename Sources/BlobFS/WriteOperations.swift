import Dispatch
import Distribution
import Glibc
import Logging
import Storage

/// The operations of read-write mounts (docs/architecture.md, "Writes"). On a read-only mount
/// the kernel refuses every mutation with EROFS before it reaches us; these check again all the
/// same.
extension BlobFileSystem {
    /// A new file in a repository's `blobs/`: an upload, open for writing, committed at its
    /// close (a digest name) or its rename onto a digest (a temporary name).
    func create(parent: UInt64, name: String) throws(FileSystemError) -> CreateReply {
        guard options.readWrite else { throw .readOnlyMount }
        let upload = try startUpload(parent: parent, name: name)
        let node = Node.upload(upload.serial)
        let attributes = uploadAttributes(upload)
        let ino = inodes.reference(node, attributes: attributes)
        let handle = handles.insert(.write(OpenWrite(.upload(upload))))
        // Nothing of an upload belongs in the page cache.
        return CreateReply(entry: EntryReply(ino: ino, node: node, attributes: attributes), open: OpenReply(handle: handle, directIO: true))
    }

    /// Takes back a create the kernel never received: its handle, its upload (nothing written
    /// yet) and its lookup.
    func createNotDelivered(_ reply: CreateReply) {
        if case .write(let write)? = handles.remove(reply.open.handle), case .upload(let upload) = write.target {
            upload.cancel(.notCreated)
            uploads.remove(upload)
        }
        inodes.forget(reply.entry.ino, count: 1)
    }

    /// mknod(2): a regular file is a create followed by its last close (an empty file: committed
    /// now under the empty digest, refused with EIO under any other digest; a temporary name stays
    /// an upload for the open that follows). FIFOs, devices and sockets cannot become blobs: EPERM.
    func mknod(parent: UInt64, name: String, mode: mode_t) throws(FileSystemError) -> EntryReply {
        guard options.readWrite else { throw .readOnlyMount }
        guard mode & S_IFMT == S_IFREG || mode & S_IFMT == 0 else {
            throw .refusedWrite(.specialFile(name: name, mode: mode), operation: "mknod in \(directoryName(parent))")
        }
        let upload = try startUpload(parent: parent, name: name)
        guard let digest = upload.digest else {
            let node = Node.upload(upload.serial)
            let attributes = uploadAttributes(upload)
            return EntryReply(ino: inodes.reference(node, attributes: attributes), node: node, attributes: attributes)
        }
        defer { uploads.remove(upload) }
        let found: BlobTree.Entry?
        do throws(BlobError) {
            try upload.commitIfComplete(as: digest)
            invalidate(parent: parent, name: name)
            found = try tree.lookup(name, in: upload.directory, directoryTime: mountTime)
        } catch {
            upload.cancel(.lastCloseWithoutMatch)
            throw .storage(error, operation: "mknod \(upload.directory)/\(name)")
        }
        guard let found else { throw .vanishedAfterWrite(operation: "mknod \(upload.directory)/\(name)") }
        return EntryReply(ino: inodes.reference(found.node, attributes: found.attributes), node: found.node, attributes: found.attributes)
    }

    /// Takes back a mknod the kernel never received: the upload of a temporary name, and the lookup.
    func mknodNotDelivered(_ entry: EntryReply) {
        if case .upload(let serial) = entry.node, let upload = uploads[serial] {
            upload.cancel(.notCreated)
            uploads.remove(upload)
        }
        inodes.forget(entry.ino, count: 1)
    }

    /// symlink(2): in a repository's `tags/`, `<tag> -> ../manifests/sha256:<hex>` tags that
    /// manifest (`current/link` after its `index/` entry, as the registry tags; the manifest may
    /// arrive later, in a restore's any order); anywhere else a store holds no symbolic links.
    func symlink(target: String, parent: UInt64, name: String) throws(FileSystemError) -> EntryReply {
        guard options.readWrite else { throw .readOnlyMount }
        guard case .directory(let path)? = inodes[parent]?.node, case .section(.tags, let repositoryName)? = BlobTree.place(of: path),
            tree.isRepository(BlobTree.path(of: repositoryName))
        else {
            throw .refusedWrite(.symbolicLink(name: name), operation: "symlink in \(directoryName(parent))")
        }
        guard let digest = BlobTree.manifest(linkedBy: target) else {
            throw .refusedName(.notAManifestTarget(name: name, target: target), operation: "symlink in \(path)")
        }
        guard let tag = try? Tag(name) else {
            // rsync's temporary name for a link it updates: kept in this mount until its rename.
            guard name.hasPrefix("."), name.count > 1 else { throw .refusedName(.notATag(name: name), operation: "symlink in \(path)") }
            let link = pendingLinks.add(name, in: path, to: digest)
            let attributes = linkAttributes(digest)
            return EntryReply(ino: inodes.reference(.pendingLink(link.serial), attributes: attributes), node: .pendingLink(link.serial), attributes: attributes)
        }
        try FileSystemError.storage("tag \(repositoryName):\(tag)") { () throws(BlobError) in
            try registry.repository(repositoryName).tags.tag(tag, to: digest)
        }
        tagTargets.remember(digest, for: TagName(repository: repositoryName, tag: tag))
        invalidate(parent: parent, name: name)
        let found = try FileSystemError.storage("symlink \(path)/\(name)") { () throws(BlobError) in
            try tree.lookup(name, in: path, directoryTime: mountTime)
        }
        guard let found else { throw .vanishedAfterWrite(operation: "symlink \(path)/\(name)") }
        return EntryReply(ino: inodes.reference(found.node, attributes: found.attributes), node: found.node, attributes: found.attributes)
    }

    /// link(2) of a blob into another repository's `blobs/`: a cross-repository mount, as the
    /// registry makes one (the new repository links the same data; nothing is copied). This is
    /// how a backup that kept a shared blob as hard links (`rsync -aH`, `cp -a`, `tar`) is
    /// restored. The new name must be one the source repository links to the same blob; anything
    /// else is EPERM, as a hard link is anywhere else in the tree.
    func link(ino: UInt64, newParent: UInt64, newName: String) throws(FileSystemError) -> EntryReply {
        guard options.readWrite else { throw .readOnlyMount }
        if let entry = inodes[ino], case .directory(let path)? = inodes[newParent]?.node,
            case .section(let section, let repository)? = BlobTree.place(of: path), section != .blobs
        {
            return try linkManifest(entry, into: section, of: repository, parent: newParent, name: newName)
        }
        guard let entry = inodes[ino], case .blob(let source) = entry.node, let canonical = entry.attributes.descriptor?.digest,
            case .directory(let path)? = inodes[newParent]?.node, let target = tree.repositoryOwningBlobs(path)
        else {
            logger.error("only a blob can be hard-linked, and only into a repository's blobs directory", metadata: ["name": "\(newName)"])
            throw .notPermitted
        }
        guard case .digest(let name) = UploadName.classify(newName) else {
            logger.error("a hard link of a blob must have the blob's digest as its name", metadata: ["name": "\(newName)"])
            throw .notPermitted
        }
        let sourceRepository = try FileSystemError.storage("link \(source)") { () throws(BlobError) in try registry.repository(source.repository) }
        guard (try? sourceRepository.blobs.linkTarget(name)) == canonical else {
            logger.error("a hard link must keep a name the blob has", metadata: ["blob": "\(source)", "new name": "\(newName)"])
            throw .notPermitted
        }
        _ = try FileSystemError.storage("link \(source) into \(target.name)") { () throws(BlobError) in
            try target.blobs.mount(name, from: sourceRepository.blobs)
        }
        sharedBlobs.added(canonical)
        invalidate(parent: newParent, name: newName)
        let found = try FileSystemError.storage("link \(path)/\(newName)") { () throws(BlobError) in
            try tree.lookup(newName, in: path, directoryTime: mountTime)
        }
        guard let found else { throw .vanishedAfterWrite(operation: "link \(path)/\(newName)") }
        return EntryReply(ino: inodes.reference(found.node, attributes: found.attributes), node: found.node, attributes: found.attributes)
    }

    /// link(2) between a repository's `manifests/` and `tags/`: how a copy that dereferenced the
    /// tags and kept hard links comes back. GNU `tar -h` archives a tag whose manifest it already
    /// holds as a hard link to it (whatever `st_nlink` says), as `rsync -HL` and `cp -aL` copy it,
    /// so a restore links `manifests/<digest>` to `tags/<tag>`: that tags the manifest. The other
    /// way round (the tag came first, as a file holding the manifest, and is a link now), a link
    /// into `manifests/` under the digest the tag names is the revision, which its file stored:
    /// nothing to do. The reply is the source's own inode, as for any hard link (the kernel
    /// refuses a new entry of another file type), and the new name's entry is invalidated so that
    /// the next lookup finds the tag's link or the manifest. Within one repository only; anything
    /// else is EPERM.
    private func linkManifest(
        _ entry: InodeTable.Entry, into section: BlobTree.Section, of repositoryName: RepositoryName, parent: UInt64, name: String
    ) throws(FileSystemError) -> EntryReply {
        let source: Digest
        switch entry.node {
        case .manifest(let manifest) where manifest.repository == repositoryName:
            source = manifest.digest
        case .tag(let tag, _) where tag.repository == repositoryName:
            let current = try FileSystemError.storage("link \(tag)") { () throws(BlobError) in
                try registry.repository(repositoryName).tags.current(tag.tag)
            }
            guard let current else { throw .noEntry }
            source = current
        default:
            logger.error("a hard link into manifests/ or tags/ must be of a manifest or a tag of the same repository", metadata: ["name": "\(name)"])
            throw .notPermitted
        }
        let repository = try FileSystemError.storage("link into \(repositoryName)") { () throws(BlobError) in
            try registry.repository(repositoryName)
        }
        switch section {
        case .tags:
            guard let tag = try? Tag(name) else { throw .refusedName(.notATag(name: name), operation: "link in \(repositoryName)/tags") }
            try FileSystemError.storage("tag \(repositoryName):\(tag)") { () throws(BlobError) in try repository.tags.tag(tag, to: source) }
            tagTargets.remember(source, for: TagName(repository: repositoryName, tag: tag))
        case .manifests:
            guard name == source.description, (try? repository.manifests.linkTarget(source)) == source else {
                logger.error("a hard link in manifests/ must have the digest of a manifest stored there", metadata: ["name": "\(name)"])
                throw .notPermitted
            }
        case .blobs:
            throw .notPermitted
        }
        invalidate(parent: parent, name: name)
        return EntryReply(ino: inodes.reference(entry.node, attributes: entry.attributes), node: entry.node, attributes: entry.attributes)
    }

    /// Writing to an existing file: continuing an upload of this mount, or — with O_TRUNC — a
    /// rewrite of a blob, which can only be the same bytes again.
    func openForWriting(_ entry: InodeTable.Entry, ino: UInt64, truncating: Bool) throws(FileSystemError) -> OpenDecision {
        guard options.readWrite else { throw .readOnlyMount }
        let target: OpenWrite.Target
        switch entry.node {
        case .upload(let serial):
            guard let upload = uploads[serial], case .writing = upload.phase else { throw .noEntry }
            target = .upload(upload)
        case .blob:
            guard truncating, let descriptor = entry.attributes.descriptor else {
                logger.error("blobs never change: open them for writing only with O_TRUNC, to write the same bytes")
                throw .notPermitted
            }
            target = .rewrite(IdenticalRewrite(descriptor: descriptor))
        case .manifest, .tag, .pendingLink:
            logger.error("manifests and tags cannot be opened for writing: write a new manifest, or make a tag's symbolic link")
            throw .notPermitted
        case .ociFile:
            throw .readOnlyMount  // the OCI view is read-only in every mount
        case .root, .directory, .ociDirectory:
            throw .isADirectory
        }
        guard case .rewrite = target, passthrough.isTracking else {
            return .ready(OpenReply(handle: handles.insert(.write(OpenWrite(target))), directIO: true))
        }
        // The kernel refuses (EIO) a write open of an inode it reads through passthrough: one held
        // by a reader makes this open wait for its close (and no new reader gets passthrough).
        let readers = passthrough.files.beginWrite(ino)
        let reply = OpenReply(handle: handles.insert(.write(OpenWrite(target, heldInode: ino))), directIO: true)
        guard let readers else { return .ready(reply) }
        logger.info("a blob opened for writing waits for its readers through passthrough to close it", metadata: ["inode": "\(ino)"])
        return .afterReaders(WriteAwaitingReaders(ino: ino, reply: reply, readers: readers))
    }

    /// How long a write open of a blob waits for the readers that hold it through passthrough to
    /// close it: long enough for a reader of a large blob (`cp`, `sha256sum`, a backup's `tar`) to
    /// finish; a reader that stays (`less`, `tail -f`) gets the writer EBUSY instead of a wait
    /// without end.
    static let writeWaitForReaders: DispatchTimeInterval = .seconds(5)

    /// The rest of a write open that waits for passthrough readers, on a thread of its own.
    func completeWriteOpen(_ waiting: WriteAwaitingReaders) throws(FileSystemError) -> OpenReply {
        if waiting.readers.wait(timeout: .now() + Self.writeWaitForReaders) == .timedOut {
            release(handle: waiting.reply.handle)
            logger.error(
                "a blob opened for writing is held by readers through passthrough: the write open fails with EBUSY; close them, or mount with --passthrough off",
                metadata: ["inode": "\(waiting.ino)"])
            throw .busyWithReaders
        }
        return waiting.reply
    }

    /// Appends `bytes` at `offset` of a file open for writing; returns how many were taken.
    func write(handle number: UInt64, bytes: UnsafeRawBufferPointer, offset: Int64) throws(FileSystemError) -> Int {
        guard case .write(let handle)? = handles[number] else { throw .badHandle }
        try FileSystemError.storage("write at \(offset)") { () throws(BlobError) in
            switch handle.target {
            case .upload(let upload): try upload.write(bytes, at: offset)
            case .rewrite(let rewrite): try rewrite.write(bytes, at: offset)
            }
        }
        return bytes.count
    }

    /// close(2): a file created under a digest name is verified and committed here, so that a
    /// mismatch is what close reports (release's errors reach nobody); a file under a tag's name
    /// in `tags/` makes its tag here, from what it holds.
    func flush(handle number: UInt64) throws(FileSystemError) {
        guard case .write(let handle)? = handles[number] else { return }
        if case .upload(let upload) = handle.target, let tag = upload.tag {
            try makeTag(tag, from: upload, operation: "close of")
            return
        }
        try FileSystemError.storage("close") { () throws(BlobError) in
            switch handle.target {
            case .upload(let upload):
                if let digest = upload.digest {
                    try upload.commitIfComplete(as: digest)
                    invalidate(parent: upload.parent, name: upload.name)
                }
            case .rewrite(let rewrite):
                try rewrite.check()
            }
        }
    }

    /// The last close: an upload under a digest name that was not committed is cancelled (its
    /// close already reported the mismatch), and so is a file under a tag's name whose content
    /// was refused; a temporary file stays, waiting for its rename, and an empty file in `tags/`
    /// stays as GNU tar's placeholder, waiting for the unlink that replaces it by its link.
    func finishRelease(_ handle: OpenWrite) {
        if let ino = handle.heldInode { passthrough.files.endWrite(ino) }
        guard case .upload(let upload) = handle.target else { return }
        switch upload.phase {
        case .writing where upload.digest != nil:
            upload.cancel(.lastCloseWithoutMatch)
            uploads.remove(upload)
        case .writing where upload.tag != nil && upload.size > 0:
            upload.cancel(.notATag)
            uploads.remove(upload)
        case .writing:
            break
        case .committed, .ended:
            uploads.remove(upload)
        }
    }

    /// rename(2) of an upload's temporary name onto its digest commits it; nothing else can be
    /// renamed (blobs and directories are fixed).
    func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32) throws(FileSystemError) {
        guard options.readWrite else { throw .readOnlyMount }
        let renameExchange: UInt32 = 1 << 1  // RENAME_EXCHANGE, from <linux/fs.h>
        guard flags & renameExchange == 0 else { throw .invalidArgument }
        guard case .directory(let path)? = inodes[parent]?.node, case .directory(let newPath)? = inodes[newParent]?.node else {
            throw .noEntry
        }
        if let link = pendingLinks.named(name, in: path) {
            return try renameLink(link, to: newName, in: newPath, parent: newParent)
        }
        guard let upload = uploads.named(name, in: path) else {
            logger.error("only a file being written can be renamed: blobs and directories are fixed", metadata: ["name": "\(name)"])
            throw treeHas(name, in: path) ? .notPermitted : .noEntry
        }
        guard newPath == path else {
            throw .refusedWrite(.renameOutOfItsDirectory(name: name, from: path, to: newPath), operation: "rename")
        }
        if case .tagFile = upload.kind {
            return try renameTagFile(upload, to: newName, parent: parent)
        }
        switch (upload.kind == .manifest ? UploadName.classifyManifest(newName) : UploadName.classify(newName)) {
        case .digest(let digest):
            // Committed or not, the temporary name is gone.
            defer { uploads.remove(upload) }
            do throws(BlobError) {
                try commit(upload, as: digest)
            } catch {
                invalidate(parent: parent, name: name)
                throw .storage(error, operation: "rename \(path)/\(name) to \(newName)")
            }
        case .temporary:
            throw .refusedWrite(.renameToTemporaryName(from: name, to: newName), operation: "rename in \(path)")
        case .refused(let refusal):
            throw .refusedName(refusal, operation: "refusing to rename \(name.debugDescription) in \(path)")
        }
    }

    /// unlink(2): of an upload, cancels it; of a blob (with `--allow-delete`), removes this
    /// repository's link, as the registry deletes (the data stays for GC).
    func unlink(parent: UInt64, name: String) throws(FileSystemError) {
        guard options.readWrite else { throw .readOnlyMount }
        guard case .directory(let path)? = inodes[parent]?.node else { throw .noEntry }
        if let upload = uploads.named(name, in: path) {
            upload.cancel(.unlinked)
            uploads.remove(upload)
            return
        }
        if let link = pendingLinks.named(name, in: path) {
            pendingLinks.remove(link)
            return
        }
        if case .section(.tags, let repositoryName)? = BlobTree.place(of: path), let tag = try? Tag(name) {
            // Untagging: the tag's directory goes, the manifest stays (the registry's untag).
            guard options.allowDelete else {
                logger.error("deletes are disabled (mount with --allow-delete)", metadata: ["tag": "\(path)/\(name)"])
                throw .notPermitted
            }
            let removed = try FileSystemError.storage("untag \(path)/\(name)") { () throws(BlobError) in
                try registry.repository(repositoryName).tags.untag(tag)
            }
            tagTargets.forget(TagName(repository: repositoryName, tag: tag))
            guard removed else { throw .noEntry }
            return
        }
        guard let repository = tree.repositoryOwningBlobs(path), case .digest(let digest) = UploadName.classify(name) else {
            throw treeHas(name, in: path) ? .notPermitted : .noEntry
        }
        guard options.allowDelete else {
            logger.error("deletes are disabled (mount with --allow-delete)", metadata: ["blob": "\(path)/\(name)"])
            throw .notPermitted
        }
        try FileSystemError.storage("unlink \(path)/\(name)") { () throws(BlobError) in try repository.blobs.delete(digest) }
    }

    /// mkdir(2): `<name>/blobs` (or `manifests`, `tags`) makes `<name>` a repository; any other
    /// valid component is a name prefix (a directory that repositories go under), spelled
    /// `@<component>` when it is a reserved word (BlobTree). Nothing is made inside a section.
    func mkdir(parent: UInt64, name: String) throws(FileSystemError) -> EntryReply {
        guard options.readWrite else { throw .readOnlyMount }
        guard case .directory(let path)? = inodes[parent]?.node, case .names(let prefix)? = BlobTree.place(of: path) else {
            logger.error("directories can only be made for repository names", metadata: ["name": "\(name)"])
            throw .notPermitted
        }
        let child = path.isEmpty ? name : path + "/" + name
        if let section = BlobTree.Section(rawValue: name), let repository = prefix {
            // A section that exists is made again without error, as `mkdir -p` would: sections
            // appear as a side effect of other writes (a manifest brings its repository's
            // `blobs/`, a tag file holding a manifest brings `manifests/` too), and `cp -a`, which
            // made the repository's directory itself, makes each child it copies without looking
            // first: in the order of its source's inodes, `manifests/` may come before `blobs/`.
            // (The kernel answers EEXIST itself when its LOOKUP finds the section: UnmadeSections
            // hides the sections of a repository made here until they are made.)
            defer { unmadeSections.made(section, of: repository) }
            let existing = try FileSystemError.storage("mkdir \(child)") { () throws(BlobError) in try tree.sections(of: repository) }
            if !existing.contains(section) {
                try FileSystemError.storage("mkdir \(child)") { () throws(BlobError) in
                    switch section {
                    case .blobs: try registry.createRepository(repository)
                    case .manifests: try registry.createManifestsDirectory(repository)
                    case .tags: try registry.createTagsDirectory(repository)
                    }
                }
            }
        } else {
            guard let component = BlobTree.component(shownAs: name),
                let full = try? RepositoryName(prefix.map { "\($0)/\(component)" } ?? component)
            else {
                logger.error("refusing an invalid repository name component \(name.debugDescription) (a reserved word is written @\(name))")
                throw .invalidArgument
            }
            guard !treeHas(name, in: path) else { throw .exists }
            try FileSystemError.storage("mkdir \(child)") { () throws(BlobError) in try registry.createNamePrefix(full) }
            unmadeSections.madeRepository(full)
        }
        let found = try FileSystemError.storage("mkdir \(child)") { () throws(BlobError) in
            try tree.lookup(name, in: path, directoryTime: mountTime).map(withDirectoryMode)
        }
        guard let found else { throw .vanishedAfterWrite(operation: "mkdir \(child)") }
        return EntryReply(ino: inodes.reference(found.node, attributes: found.attributes), node: found.node, attributes: found.attributes)
    }

    /// Repositories and name components are never removed through the mount.
    func rmdir() throws(FileSystemError) {
        throw options.readWrite ? .notPermitted : .readOnlyMount
    }

    /// Attribute changes have no effect (blobs are 0444 by definition; times and owners are the
    /// store's), but succeed, so that `rsync -a`, `cp -a` and `tar -x` do not fail. A new `size`
    /// extends an upload (cp and rsync end a sparse file's trailing hole with ftruncate).
    func setattr(ino: UInt64, size: Int64?) throws(FileSystemError) -> AttributesReply {
        guard options.readWrite else { throw .readOnlyMount }
        guard let entry = inodes[ino] else { throw .noEntry }
        if let size, size != currentAttributes(entry).size {
            switch entry.node {
            case .upload(let serial):
                guard let upload = uploads[serial] else { throw .noEntry }
                try FileSystemError.storage("truncate \(upload.directory)/\(upload.name)") { () throws(BlobError) in
                    try upload.extend(to: size)
                }
            case .blob where size == 0:
                // Truncating a blob before rewriting it (no atomic O_TRUNC): what is written next
                // is checked against the blob's digest.
                break
            default:
                throw .invalidArgument
            }
        }
        return AttributesReply(ino: ino, node: entry.node, attributes: currentAttributes(entry))
    }

    // MARK: - Helpers

    /// The upload behind a new file `name` in `parent`, registered in the upload table. EPERM
    /// outside a repository's `blobs/`; EINVAL for a name that can never become a blob
    /// (UploadName), so that nothing is accepted only to be thrown away.
    private func startUpload(parent: UInt64, name: String) throws(FileSystemError) -> PendingUpload {
        guard let parentEntry = inodes[parent], case .directory(let path) = parentEntry.node, let target = tree.uploadTarget(path) else {
            logger.error("files can only be created in a repository's blobs or manifests directory", metadata: ["name": "\(name)"])
            throw .notPermitted
        }
        let kind: PendingUpload.Kind
        let digest: Digest?
        switch target.section {
        case .tags:
            // A tag written as a file (TagFileName, TagFileContent): decided at close under the
            // tag's name, at rename under rsync's temporary name. Until then it is in this mount
            // only, like a temporary name; an empty one is GNU tar's placeholder (tar writes one
            // for every link whose target holds `..`, and replaces it by unlink and symlink at the
            // end of the archive).
            switch TagFileName.classify(name) {
            case .tag(let tag): kind = .tagFile(tag)
            case .temporary: kind = .tagFile(nil)
            case .refused(let refusal): throw .refusedName(refusal, operation: "refusing a new file in \(path)")
            }
            digest = nil
        case .blobs, .manifests:
            kind = target.section == .blobs ? .blob : .manifest
            switch kind == .manifest ? UploadName.classifyManifest(name) : UploadName.classify(name) {
            case .digest(let d): digest = d
            case .temporary: digest = nil
            case .refused(let refusal): throw .refusedName(refusal, operation: "refusing a new file in \(path)")
            }
        }
        let upload = try FileSystemError.storage("create \(path)/\(name)") { () throws(BlobError) in
            try PendingUpload(
                serial: uploads.nextSerial(), repository: target.repository, parent: parent, directory: path, name: name, digest: digest,
                kind: kind, logger: logger)
        }
        uploads.add(upload)
        return upload
    }

    /// The rename of a link made under a temporary name onto a tag of the same `tags/`: tags
    /// the manifest (rsync's update of a tag that changed).
    private func renameLink(_ link: PendingLinks.Link, to newName: String, in newPath: String, parent: UInt64) throws(FileSystemError) {
        guard newPath == link.directory, case .section(.tags, let repositoryName)? = BlobTree.place(of: newPath) else {
            throw .refusedWrite(.renameOutOfItsDirectory(name: link.name, from: link.directory, to: newPath), operation: "rename")
        }
        guard let tag = try? Tag(newName) else { throw .refusedName(.notATag(name: newName), operation: "rename in \(newPath)") }
        try FileSystemError.storage("tag \(repositoryName):\(tag)") { () throws(BlobError) in
            try registry.repository(repositoryName).tags.tag(tag, to: link.manifest)
        }
        tagTargets.remember(link.manifest, for: TagName(repository: repositoryName, tag: tag))
        pendingLinks.remove(link)
        invalidate(parent: parent, name: link.name)
        invalidate(parent: parent, name: newName)
    }

    /// A file in `tags/` at its close (under the tag's name) or its rename onto a tag: what it
    /// holds decides (`TagFileContent`). A digest or a manifest's bytes tag that manifest (the
    /// manifest stored first, verified like any); the file is then gone and the name is the tag's
    /// symbolic link. An empty file stays GNU tar's placeholder. Anything else is EINVAL and
    /// stores nothing; the file stays open for more writes, as a blob whose bytes do not match
    /// yet. Returns whether the tag was made.
    @discardableResult
    private func makeTag(_ tag: Tag, from upload: PendingUpload, operation: String) throws(FileSystemError) -> Bool {
        let file = "\(upload.directory)/\(upload.name)"
        switch upload.phase {
        case .writing: break
        // Cancelled: it made its tag already (a second close), or it was unlinked.
        case .ended(.uploadUnknown), .committed: return false
        case .ended(let error): throw .storage(error, operation: "\(operation) \(file)")
        }
        let bytes = try FileSystemError.storage("\(operation) \(file)") { () throws(BlobError) in try upload.writtenBytes() }
        let content: TagFileContent
        do {
            content = try TagFileContent(bytes)
        } catch {
            throw .refusedTagFile(error, operation: "\(operation) \(file)")
        }
        guard content != .empty else { return false }
        let manifest = try FileSystemError.storage("tag \(upload.repository.name):\(tag) from \(file)") { () throws(BlobError) in
            try upload.repository.tag(tag, from: content)
        }
        upload.cancel(.becameTag)
        uploads.remove(upload)
        if let manifest { tagTargets.remember(manifest, for: TagName(repository: upload.repository.name, tag: tag)) }
        invalidate(parent: upload.parent, name: upload.name)
        if upload.name != tag.value { invalidate(parent: upload.parent, name: tag.value) }
        return true
    }

    /// The rename of a file in `tags/` onto a tag (rsync's `.<tag>.XXXXXX` when tags are files or
    /// dereferenced): makes the tag from what it holds. A file that cannot be a tag (or is empty:
    /// only tar's placeholders are, and never renamed) is dropped with a warning, and the rename
    /// fails with EINVAL.
    private func renameTagFile(_ upload: PendingUpload, to newName: String, parent: UInt64) throws(FileSystemError) {
        let tag: Tag
        switch TagFileName.classify(newName) {
        case .tag(let named): tag = named
        case .temporary: throw .refusedWrite(.renameToTemporaryName(from: upload.name, to: newName), operation: "rename in \(upload.directory)")
        case .refused(let refusal): throw .refusedName(refusal, operation: "refusing to rename \(upload.name.debugDescription) in \(upload.directory)")
        }
        let operation = "rename of \(upload.directory)/\(upload.name) to \(newName):"
        do throws(FileSystemError) {
            guard try makeTag(tag, from: upload, operation: operation) else { throw .refusedTagFile(.empty, operation: operation) }
        } catch {
            upload.cancel(.notATag)
            uploads.remove(upload)
            invalidate(parent: parent, name: upload.name)
            throw error
        }
        // A placeholder under the tag's name, if any, is replaced, as a rename replaces its target.
        if let replaced = uploads.named(newName, in: upload.directory) {
            replaced.cancel(.unlinked)
            uploads.remove(replaced)
        }
    }

    /// Commits and, once the blob exists, makes the kernel forget the names it has cached.
    func commit(_ upload: PendingUpload, as digest: Digest) throws(BlobError) {
        _ = try upload.commit(as: digest)
        invalidate(parent: upload.parent, name: digest.description)
        invalidate(parent: upload.parent, name: upload.name)
    }

    /// A directory inode's path, for log lines ("?" for an inode that is not a directory).
    func directoryName(_ ino: UInt64) -> String {
        guard case .directory(let path)? = inodes[ino]?.node else { return "?" }
        return path.isEmpty ? "repo" : path
    }

    func treeHas(_ name: String, in path: String) -> Bool {
        ((try? tree.lookup(name, in: path, directoryTime: mountTime)) ?? nil) != nil
    }
}
