import Distribution
import Glibc
import Logging
import Storage

/// Opening and reading files and directories. A blob's bytes are served only once they are known
/// to hash to its name in the data file version the handle has open (docs/architecture.md,
/// "Verification").
extension BlobFileSystem {
    /// open(2) of a file, answered when it returns (a blob whose first hash passthrough moves to
    /// the open is hashed here, on the caller's thread).
    func open(ino: UInt64, flags: Int32) throws(FileSystemError) -> OpenReply {
        switch try openDeferringCheck(ino: ino, flags: flags) {
        case .ready(let reply): return reply
        case .afterCheck(let unchecked): return try completeOpen(unchecked)
        case .afterFetch(let unfetched): return try completeOpen(unfetched)
        case .afterReaders(let waiting): return try completeWriteOpen(waiting)
        }
    }

    /// The rest of an open whose blob is fetched into the blob cache first, on a thread of its
    /// own: the fetch (openers of the same blob share one, BlobDataCache's gate), then the open
    /// as any other, its first hash included where passthrough moves it to the open (the cache
    /// file was hashed as it arrived: that costs no second pass).
    func completeOpen(_ opening: UnfetchedOpen) throws(FileSystemError) -> OpenReply {
        switch try openData(ino: opening.ino, name: opening.name, descriptor: opening.descriptor) {
        case .ready(let reply): return reply
        case .afterCheck(let unchecked): return try completeOpen(unchecked)
        case .afterFetch: preconditionFailure("openData never defers a fetch")
        case .afterReaders: preconditionFailure("openData opens for reading only")
        }
    }

    /// open(2) of a file: a read-only open of a blob here, anything that may write in
    /// WriteOperations.swift. A blob the kernel could read through passthrough but that was not
    /// verified yet comes back as `.afterCheck`: its hash must come before the reply
    /// (PassthroughOpens.swift), and the caller runs it off the libfuse worker thread; so does a
    /// blob the blob cache must fetch first (`.afterFetch`).
    func openDeferringCheck(ino: UInt64, flags: Int32) throws(FileSystemError) -> OpenDecision {
        guard let entry = inodes[ino] else { throw .noEntry }
        if flags & O_ACCMODE != O_RDONLY {
            return try openForWriting(entry, ino: ino, truncating: flags & O_TRUNC != 0)
        }
        if case .upload = entry.node {
            // Notice, not error: `rsync -aX` opens each temporary file it wrote read-only to copy
            // its attributes, takes the EACCES and carries on (exit 0). Nothing is lost.
            logger.notice("an upload in progress cannot be read", metadata: ["inode": "\(ino)"])
            throw .uploadNotReadable
        }
        // A blob or a manifest: both are a data file in blobs/, named by their digest and
        // linked by the repository (a manifest by its revision link).
        let name: BlobName
        let section: BlobTree.Section
        switch entry.node {
        case .blob(let blob): (name, section) = (blob, .blobs)
        case .manifest(let manifest): (name, section) = (manifest, .manifests)
        case .tag, .pendingLink: throw .invalidArgument  // the kernel follows a symbolic link; it never opens one
        case .ociFile(let file): return .ready(try openGenerated(file))
        case .root, .directory, .ociDirectory, .upload: throw .isADirectory
        }
        guard let descriptor = entry.attributes.descriptor else { throw .isADirectory }
        // An empty data file is only right for the empty digest.
        if descriptor.size == 0 && name.digest != Digester(name.digest.algorithm).digest() {
            logger.error("blob data is empty but its digest is not the empty digest", metadata: ["blob": "\(name)"])
            throw .blobRefused
        }
        // Membership, as storage has it now: the kernel may hold this name longer than the
        // repository links it (another mount or the registry removed it), and a removed blob
        // must not stay readable there. ESTALE makes the kernel look the path up again,
        // which then finds what the repository links now.
        let target: Digest? = try FileSystemError.storage("open \(name)") { () throws(BlobError) in
            do throws(BlobError) {
                let repository = try registry.repository(name.repository)
                return section == .manifests
                    ? try repository.manifests.linkTarget(name.digest) : try repository.blobs.linkTarget(name.digest)
            } catch .unknown {
                return nil
            }
        }
        guard target == descriptor.digest else {
            logger.info("a blob name the kernel held is no longer linked as it was", metadata: [
                "blob": "\(name)", "was": "\(descriptor.digest)", "now": "\(target.map { "\($0)" } ?? "no link")",
            ])
            forgetName(name, in: section)
            throw .staleName
        }
        if registry.dataCache?.opensFromStorage(descriptor) == true {
            return .afterFetch(UnfetchedOpen(ino: ino, name: name, descriptor: descriptor))
        }
        return try openData(ino: ino, name: name, descriptor: descriptor)
    }

    /// The open of a blob's data once its link is known to name it: the reader (fetching the
    /// blob into the cache first where it must be), its version, and whether it is hashed before
    /// the reply (`.afterCheck`) or at the first read.
    private func openData(ino: UInt64, name: BlobName, descriptor: Descriptor) throws(FileSystemError) -> OpenDecision {
        let reader = try FileSystemError.storage("open \(name)") { () throws(BlobError) in
            try registry.blobStore.open(descriptor)
        }
        // The version opened: what is verified, and what this handle serves. With --no-verify
        // nothing is checked, and no fstat is spent.
        let version =
            options.verifyReads ? try FileSystemError.storage("open \(name)") { () throws(BlobError) in try reader.version() } : nil
        var needsCheck = false
        if options.verifyReads {
            switch verifier.known(name.digest, in: version) {
            case .corrupt?:
                logger.error("refusing a blob that failed verification in this version of its data file", metadata: ["blob": "\(name)"])
                throw .blobRefused
            case .intact?:
                needsCheck = false
            case nil:
                needsCheck = descriptor.size > 0
            }
        }
        let opening = UncheckedOpen(ino: ino, name: name, descriptor: descriptor, reader: reader, version: version)
        if needsCheck && checkBeforeReplying(opening) { return .afterCheck(opening) }
        return .ready(openBlob(opening, needsCheck: needsCheck))
    }

    /// Registers the handle of a blob's open, served by the kernel (passthrough) where it may be.
    func openBlob(_ opening: UncheckedOpen, needsCheck: Bool) -> OpenReply {
        var needsCheck = needsCheck
        let grant = passthroughGrant(opening, needsCheck: &needsCheck)
        let handle = handles.insert(
            .blob(
                OpenBlob(
                    inode: opening.ino, name: opening.name, reader: opening.reader, version: opening.version,
                    needsCheck: needsCheck, grant: grant)))
        if case .passthrough(let id) = grant { return OpenReply(handle: handle, backingID: id) }
        // Pages the kernel holds were verified (a corrupt version fails this open, and a handle
        // serves only the version it verified), so they may stay across opens.
        return OpenReply(handle: handle, keepCache: true)
    }

    /// An OCI layout file blobfs writes itself, generated now and served from memory through this
    /// handle (direct I/O: `index.json` changes when tags move, so no page of it is kept).
    private func openGenerated(_ file: OCIFile) throws(FileSystemError) -> OpenReply {
        let bytes: [UInt8]
        switch file {
        case .layout: bytes = OCILayoutTree.layoutFile
        case .index(let repository):
            bytes = try FileSystemError.storage("open oci/\(repository)/index.json") { () throws(BlobError) in try ociTree.index(of: repository) }
        }
        return OpenReply(handle: handles.insert(.generated(GeneratedFile(bytes))), directIO: true)
    }

    /// Takes back the handle of an open the kernel never received.
    func openNotDelivered(_ reply: OpenReply) {
        if case .blob(let blob)? = handles.remove(reply.handle) { passthrough.files.release(blob.inode, blob.grant) }
    }

    /// Reads up to `buffer.count` bytes at `offset` of an open blob into `buffer`.
    func read(handle number: UInt64, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        passthrough.daemonReads.add(1, ordering: .relaxed)
        if case .generated(let file)? = handles[number] { return file.read(into: buffer, at: offset) }
        guard case .blob(let handle)? = handles[number] else { throw .badHandle }
        // A handle that needs no check holds a verified version (each read confirms it is still
        // that version) or reads with --no-verify: the hot path takes no lock for verification.
        if handle.needsCheck.load(ordering: .acquiring) {
            let verdict: (outcome: FirstReadVerifier.Outcome, hashedNow: Bool)
            do throws(BlobError) {
                verdict = try verifier.check(handle.reader, as: handle.name.digest, version: handle.version)
            } catch {
                dropPages(of: handle)
                throw .storage(error, operation: "verify \(handle.name)")
            }
            if case .corrupt(let actual) = verdict.outcome {
                // One line per mismatch found, not per reader that waited for the same pass.
                if verdict.hashedNow { blobFailedVerification(handle, actual: actual) } else { dropPages(of: handle) }
                throw .blobRefused
            }
            handle.needsCheck.store(false, ordering: .releasing)
        }
        do throws(BlobError) {
            let n = try handle.reader.read(into: buffer, at: offset)
            // The bytes just read are the verified ones only if the file is still the version
            // that was verified: a write moves its ctime before it changes a byte, so one fstat
            // after the read catches an edit made while the file is open.
            if let version = handle.version, try handle.reader.version() != version {
                throw .changed(handle.name.digest, path: handle.reader.location)
            }
            return n
        } catch {
            if case .changed = error { dropPages(of: handle) }
            throw .storage(error, operation: "read \(handle.name) at \(offset)")
        }
    }

    /// The last close of a file handle (its errors reach nobody: close reported them at flush).
    func release(handle number: UInt64) {
        switch handles.remove(number) {
        case .write(let write)?: finishRelease(write)
        case .blob(let blob)?: passthrough.files.release(blob.inode, blob.grant)
        default: break
        }
    }

    /// A directory's listing, taken now and served by offset from the handle.
    func opendir(ino: UInt64) throws(FileSystemError) -> OpenReply {
        guard let entry = inodes[ino] else { throw .noEntry }
        let entries: [BlobTree.Entry]
        switch entry.node {
        case .root:
            entries = rootEntries
        case .ociDirectory(let path):
            entries = try FileSystemError.storage("opendir \(entry.node)") { () throws(BlobError) in
                try ociTree.entries(in: path, directoryTime: mountTime)
            }
        case .directory(let path):
            entries =
                try FileSystemError.storage("opendir \(entry.node)") { () throws(BlobError) in
                    try tree.entries(in: path, directoryTime: mountTime).map(withDirectoryMode)
                }.filter { !unmadeSections.hides($0.name, in: path) }
                + uploads.names(in: path).map {
                    BlobTree.Entry(name: $0.name, node: .upload($0.upload.serial), attributes: uploadAttributes($0.upload))
                }
        case .blob, .upload, .manifest, .tag, .pendingLink, .ociFile:
            throw .notADirectory
        }
        entries.forEach(rememberTarget)
        return OpenReply(handle: handles.insert(.directory(OpenDirectory(inode: ino, entries: entries))))
    }

    /// The entries of an open listing from `offset` that fit in `size` bytes: "." and ".." first,
    /// then the snapshot taken at opendir. With `plus`, each child entry counts one lookup of its
    /// inode, in the same step that finds or makes the inode (counting later left a moment when
    /// a listing of another directory linking the same blob, or a parallel listing of this one,
    /// could free the uncounted inode). A plain entry only borrows its inode's number.
    func readdir(handle number: UInt64, offset: Int64, size: Int, plus: Bool) throws(FileSystemError) -> [ListedEntry] {
        guard case .directory(let directory)? = handles[number] else { throw .badHandle }
        var listed: [ListedEntry] = []
        var used = 0
        var index = Int(max(0, offset))
        while index < directory.entries.count + 2 {
            let name = index == 0 ? "." : index == 1 ? ".." : directory.entries[index - 2].name
            let length = DirectoryEntrySize.of(name, plus: plus)
            guard used + length <= size else { break }
            used += length
            if index < 2 {
                let ino = index == 0 ? directory.inode : InodeTable.rootID
                listed.append(ListedEntry(name: name, ino: ino, node: nil, attributes: nil, nextOffset: Int64(index + 1), countsLookup: false))
            } else {
                let entry = directory.entries[index - 2]
                let ino = inodes.reference(entry.node, attributes: entry.attributes, countLookup: plus)
                if !plus { inodes.releaseIfUnreferenced(ino) }
                listed.append(
                    ListedEntry(
                        name: name, ino: ino, node: entry.node, attributes: entry.attributes, nextOffset: Int64(index + 1),
                        countsLookup: plus))
            }
            index += 1
        }
        return listed
    }

    /// Takes back the lookups of listed entries the kernel never received.
    func listingNotDelivered(_ entries: ArraySlice<ListedEntry>) {
        for entry in entries where entry.countsLookup { inodes.forget(entry.ino, count: 1) }
    }

    func releasedir(handle number: UInt64) {
        _ = handles.remove(number)
    }

    // MARK: - Helpers

    /// Makes the kernel forget a blob name it holds, so that its next use is a fresh lookup.
    func forgetName(_ name: BlobName, in section: BlobTree.Section = .blobs) {
        guard let parent = inodes.inode(of: .directory(path: BlobTree.path(of: section, in: name.repository))) else { return }
        invalidate(parent: parent, name: name.digest.description)
    }

    /// Logs the mismatch (the blob is refused from now on) and drops any cached pages of it.
    func blobFailedVerification(_ handle: OpenBlob, actual: Digest) {
        let descriptor = handle.reader.descriptor
        logger.error("blob content does not match its name: reads fail with EIO", metadata: [
            "blob": "\(handle.name)", "path": "\(options.storageRoot)\(handle.reader.location)",
            "expected": "\(handle.name.digest)", "actual": "\(actual)", "canonical": "\(descriptor.digest)",
        ])
        dropPages(of: handle)
    }

    /// Drops the kernel's cached pages of a handle's inode: they may hold bytes of a version
    /// that is no longer (or never was) verified.
    func dropPages(of handle: OpenBlob) {
        notices.withLock { $0 }?.dropPages(of: handle.inode)
    }

    /// Makes the kernel forget its cached entry for `name` in `parent`.
    func invalidate(parent: UInt64, name: String) {
        notices.withLock { $0 }?.forgetEntry(parent: parent, name: name)
    }
}
