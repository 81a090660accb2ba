import Glibc
import StorageDriver

/// Sizes the S3 driver reads, writes and copies in.
public struct S3DriverTuning: Sendable, Hashable {
    /// A writer's multipart part size; S3 refuses parts under 5 MiB except the last.
    public var partSize: Int
    /// A reader's ranged GET for reads smaller than this (one block kept per reader).
    public var readBlockSize: Int
    /// Objects up to this size move with one CopyObject, larger ones with UploadPartCopy
    /// (the registry's `multipartcopythresholdsize`, 32 MiB; CopyObject's own limit is 5 GiB).
    public var copyThreshold: Int64
    /// UploadPartCopy's range (the registry's `multipartcopychunksize`).
    public var copyPartSize: Int64

    public init(partSize: Int = 10 << 20, readBlockSize: Int = 4 << 20, copyThreshold: Int64 = 32 << 20, copyPartSize: Int64 = 32 << 20) {
        self.partSize = max(partSize, S3DriverTuning.minimumPartSize)
        self.readBlockSize = max(readBlockSize, 4096)
        self.copyThreshold = min(copyThreshold, 5 << 30)
        self.copyPartSize = max(copyPartSize, Int64(S3DriverTuning.minimumPartSize))
    }

    /// S3's smallest part but the last.
    public static let minimumPartSize = 5 << 20
}

/// A driver over an S3 bucket: a driver path `/a/b` is the key `<root prefix>a/b`, the layout
/// docker-registry's own S3 driver writes (its `rootdirectory` without the leading `/`).
///
/// Where it differs from the filesystem driver, it answers as the registry's S3 driver does:
/// - Directories are only key prefixes: a path is a directory when some key lies below it. There
///   are never directory-marker objects, so `createDirectory` writes nothing and an empty
///   directory does not exist; a directory vanishes with its last file.
/// - A writer's bytes become visible when it is committed or closed (a multipart upload completes,
///   or one PutObject for a short file), never piece by piece; `cancel` aborts the upload. An
///   appending writer starts from the existing object (read back if small, copied as parts if not).
/// - `move` is a copy and a delete (CopyObject up to `copyThreshold`, UploadPartCopy beyond), so
///   it is not atomic; a key and a prefix of the same name may coexist in S3, and the key wins.
/// - `getContent` of a directory is `pathNotFound`, as `list` of a file is: neither costs a second
///   request to say which.
/// - A reader reads the version it opened (If-Match on its ETag): where a filesystem reader keeps
///   the replaced file's bytes, this one fails with ESTALE, never mixing two versions.
/// Identity comes from the digest in the key; ETags differ between servers for the same bytes.
public final class S3Driver: StorageDriver {
    public var name: String { "s3" }
    public let client: S3Client
    public let tuning: S3DriverTuning
    /// The key prefix every driver path is under: "" or ending in `/`.
    let prefix: String

    /// `rootDirectory` is the registry's `rootdirectory` (`/registry`, or `/` or "" for none).
    public init(client: S3Client, rootDirectory: String = "", tuning: S3DriverTuning = S3DriverTuning()) {
        self.client = client
        self.tuning = tuning
        let trimmed = rootDirectory.split(separator: "/").joined(separator: "/")
        prefix = trimmed.isEmpty ? "" : trimmed + "/"
    }

    /// 32 requests in flight for a listing's link reads and stats: each is a round trip of
    /// milliseconds spent waiting, not computing, and the transport keeps 32 idle connections, so
    /// a listing alone opens none it then throws away.
    public var requestConcurrency: RequestConcurrency { .remote(threads: 32) }

    /// The object key of a driver path.
    func key(_ path: DriverPath) -> String { prefix + path.relative }

    /// The driver path of a key below the prefix, nil for a key no driver path names (a marker
    /// object other tools write ends in `/` and names its directory).
    func path(ofKey key: String) -> DriverPath? {
        guard key.hasPrefix(prefix) else { return nil }
        var relative = key.dropFirst(prefix.count)
        if relative.hasSuffix("/") { relative = relative.dropLast() }
        return try? DriverPath("/" + relative)
    }

    public func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        switch try call("get", path, { () throws(S3Failure) in try client.get(key(path), limit: limit) }) {
        case .content(let bytes): return bytes
        case .tooLarge(let size): throw .tooLarge(path.value, size: size, limit: limit)
        }
    }

    public func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError) {
        try call("put", path) { () throws(S3Failure) in try client.put(key(path), content) }
    }

    public func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader {
        let head = try call("head", path) { () throws(S3Failure) in try client.head(key(path)) }
        return S3FileReader(driver: self, path: path, size: head.size, etag: head.etag, firstBlock: nil)
    }

    public func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter {
        try S3FileWriter.open(driver: self, path: path, append: append)
    }

    /// HEAD; if there is no such key, a directory when a key lies below it (one ListObjectsV2 of
    /// at most one key).
    public func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo {
        do throws(StorageDriverError) {
            let head = try call("head", path) { () throws(S3Failure) in try client.head(key(path)) }
            return FileInfo(path: path, kind: .file, size: head.size, modified: head.modified)
        } catch .pathNotFound {
            guard try hasKeys(below: path) else { throw .pathNotFound(path.value) }
            return FileInfo(path: path, kind: .directory, size: 0, modified: 0)
        }
    }

    /// Nothing to do: S3 has no directories, and this driver never writes marker objects
    /// (neither does the registry's). The directory appears with its first file.
    public func createDirectory(_ path: DriverPath) throws(StorageDriverError) {}

    /// ListObjectsV2 with delimiter `/`, every page: the keys and common prefixes right below.
    public func list(_ path: DriverPath) throws(StorageDriverError) -> [String] {
        let entries = try listEntries(path)
        guard !entries.isEmpty else { throw .pathNotFound(path.value) }
        return entries.map(\.name)
    }

    /// One page of ListObjectsV2 with delimiter `/` per batch: the keys and common prefixes right
    /// below `path`, as stored, unsorted, never the whole listing at once. A file and a prefix of
    /// one name are one name (as `list`), also across a page boundary (the listing is sorted, so
    /// the key `a` and the prefix `a/` come one after the other). `pathNotFound` when nothing lies
    /// below `path` — a file included, as `list` answers.
    public func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        guard try enumerateNames(in: path, namePrefix: "", body) else { throw .pathNotFound(path.value) }
    }

    /// One listing of the keys below `path` that start with `prefix`: listings of several
    /// prefixes run side by side (the link census lists a large `_layers/sha256/` by its first
    /// hex digit: 16 listings of a sixteenth each instead of one paged in sequence).
    public var listsByPrefix: Bool { true }

    public func enumerateNames(
        in path: DriverPath, startingWith prefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        _ = try enumerateNames(in: path, namePrefix: prefix, body)
    }

    /// The names below `path` starting with `namePrefix`, in batches of a page; whether any key was there.
    private func enumerateNames(
        in path: DriverPath, namePrefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) -> Bool {
        let below = key(path) + "/"
        var any = false
        var lastName: String?
        try forEachPage(below: path, namePrefix: namePrefix, delimiter: "/") { (page) throws(StorageDriverError) in
            var packed: [UInt8] = []
            var names = page.objects.map { String($0.key.dropFirst(below.count)) }
            names += page.prefixes.map { String($0.dropFirst(below.count).dropLast()) }
            for name in names.sorted() where !name.isEmpty && name != lastName {
                packed += name.utf8
                packed.append(0)
                lastName = name
            }
            any = any || !page.objects.isEmpty || !page.prefixes.isEmpty
            guard !packed.isEmpty else { return }
            // withUnsafeBytes rethrows untyped: the batch's error is carried out by hand.
            let failure = packed.withUnsafeBytes { bytes -> StorageDriverError? in
                do throws(StorageDriverError) { try body(DirectoryNames(nulTerminated: bytes)) } catch { return error }
                return nil
            }
            if let failure { throw failure }
        }
        return any
    }

    public func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError) {
        let sourceKey = key(source)
        let destinationKey = key(destination)
        let head = try call("move: head", source) { () throws(S3Failure) in try client.head(sourceKey) }
        guard sourceKey != destinationKey else { return }  // a copy onto itself is refused, and the delete would lose it
        if head.size <= tuning.copyThreshold {
            try call("move: copy", source) { () throws(S3Failure) in try client.copy(from: sourceKey, to: destinationKey) }
        } else {
            try copyInParts(from: sourceKey, size: head.size, to: destination)
        }
        try call("move: delete", source) { () throws(S3Failure) in try client.delete(sourceKey) }
    }

    /// The key itself and every key below it, deleted with DeleteObjects in batches of 1,000.
    public func delete(_ path: DriverPath) throws(StorageDriverError) {
        var doomed: [String] = []
        do throws(StorageDriverError) {
            _ = try call("delete: head", path) { () throws(S3Failure) in try client.head(key(path)) }
            doomed.append(key(path))
        } catch .pathNotFound {}
        try forEachPage(below: path, delimiter: nil) { page in doomed += page.objects.map(\.key) }
        guard !doomed.isEmpty else { throw .pathNotFound(path.value) }
        var start = 0
        while start < doomed.count {
            let batch = Array(doomed[start..<min(start + 1000, doomed.count)])
            try call("delete", path) { () throws(S3Failure) in
                if batch.count == 1 { try client.delete(batch[0]) } else { try client.delete(keys: batch) }
            }
            start += batch.count
        }
    }

    /// One flat listing of every key below `path` (pages of 1,000, no delimiter), then the
    /// visits in depth-first sorted order: far fewer requests than a listing per directory.
    public func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError) {
        var kinds: [DriverPath: FileKind] = [:]
        var any = false
        try forEachPage(below: path, delimiter: nil) { page in
            for object in page.objects {
                any = true
                guard let found = self.path(ofKey: object.key), found != path, found.isWithin(path) else { continue }
                kinds[found] = object.key.hasSuffix("/") ? .directory : (kinds[found] ?? .file)
                var parent = found.parent
                while let p = parent, p != path {
                    kinds[p] = .directory
                    parent = p.parent
                }
            }
        }
        guard any else { throw .pathNotFound(path.value) }
        var skipped: DriverPath?
        for entry in Self.depthFirst(kinds.map { WalkEntry(path: $0.key, kind: $0.value) }) {
            if let s = skipped, entry.path.isWithin(s) { continue }
            if try visit(entry) == .skipDirectory, entry.kind == .directory { skipped = entry.path }
        }
    }

    /// `entries` in depth-first sorted order: by components, a directory right before what lies
    /// below it. Compared as UTF-8 bytes with `/` as the lowest byte (a name holds no NUL), which
    /// orders as the components do, with one key made per path: comparing `components` split
    /// two arrays per comparison, 2.2 s of a mount's start for the 20,000 paths of a repository
    /// of 10,000 links (0.017 s this way).
    static func depthFirst(_ entries: [WalkEntry]) -> [WalkEntry] {
        let keys = entries.map { entry in entry.path.value.utf8.map { $0 == UInt8(ascii: "/") ? 0 : $0 } }
        return keys.indices.sorted { a, b in
            keys[a].withUnsafeBufferPointer { x in
                keys[b].withUnsafeBufferPointer { y in
                    let order = memcmp(x.baseAddress!, y.baseAddress!, min(x.count, y.count))
                    return order != 0 ? order < 0 : x.count < y.count
                }
            }
        }.map { entries[$0] }
    }

    public func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory {
        guard try hasKeys(below: path) else { throw .pathNotFound(path.value) }
        return S3Directory(driver: self, path: path)
    }

    /// S3 has no size to tell, so a mount shows what rclone shows for it: 1 PiB, all of it free,
    /// in 4 KiB blocks (an empty filesystem would make `df` and space checks before a restore
    /// report a full disk).
    public func capacity() throws(StorageDriverError) -> StorageCapacity? {
        let blocks: UInt64 = (1 << 50) / 4096
        let files: UInt64 = 1 << 40
        return StorageCapacity(
            blockSize: 4096, fragmentSize: 4096, blocks: blocks, freeBlocks: blocks, availableBlocks: blocks, files: files,
            freeFiles: files, availableFiles: files, nameMax: 255)
    }

    // MARK: Preflight and upload cleanup

    /// `s3://<bucket>/<root directory>`: how the store is named in messages and as a mount's source.
    public var location: String {
        "s3://\(client.configuration.bucket)" + (prefix.isEmpty ? "" : "/" + prefix.dropLast())
    }

    /// Whether any key lies below `path`, or below the root directory for nil; the S3 failure as
    /// it is, so that a preflight can say which of credentials, bucket or endpoint is wrong.
    public func containsKeys(below path: DriverPath?) throws(S3Failure) -> Bool {
        try client.containsKeys(prefix: path.map { key($0) + "/" } ?? prefix)
    }

    /// Aborts every multipart upload in progress at or below `path` (the registry keeps an
    /// upload's `data` as one until it is committed), every page; the number aborted.
    public func abortMultipartUploads(below path: DriverPath) throws(StorageDriverError) -> Int {
        let uploads = try call("list uploads", path) { () throws(S3Failure) in try client.multipartUploads(prefix: key(path)) }
        var aborted = 0
        for upload in uploads where upload.key == key(path) || upload.key.hasPrefix(key(path) + "/") {
            try call("abort upload", path) { () throws(S3Failure) in try client.abortMultipartUpload(upload.key, uploadID: upload.uploadID) }
            aborted += 1
        }
        return aborted
    }

    // MARK: Shared by the reader, writer and directory

    /// The children right below `path`, sorted by name; a file and a prefix of one name are one
    /// entry, the file (as `stat` answers). Names outside the driver path grammar are left out.
    func listEntries(_ path: DriverPath) throws(StorageDriverError) -> [DirectoryEntry] {
        var kinds: [String: FileKind] = [:]
        let below = key(path) + "/"
        try forEachPage(below: path, delimiter: "/") { page in
            for object in page.objects {
                let name = String(object.key.dropFirst(below.count))
                guard (try? path.appending(name)) != nil else { continue }  // also the marker `below` itself
                kinds[name] = .file
            }
            for prefix in page.prefixes {
                let name = String(prefix.dropFirst(below.count).dropLast())
                guard (try? path.appending(name)) != nil, kinds[name] == nil else { continue }
                kinds[name] = .directory
            }
        }
        return kinds.map { DirectoryEntry(name: $0.key, kind: $0.value) }.sorted { $0.name < $1.name }
    }

    /// Every page of ListObjectsV2 under `path`'s key and `/`. A method that enumerates a
    /// directory in batches is this, one page per batch.
    func forEachPage(
        below path: DriverPath, namePrefix: String = "", delimiter: String?, _ body: (ListPage) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        let prefix = key(path) + "/" + namePrefix
        var token: String?
        repeat {
            let page = try call("list", path) { () throws(S3Failure) in
                try client.list(prefix: prefix, delimiter: delimiter, continuationToken: token)
            }
            try body(page)
            token = page.nextToken
        } while token != nil
    }

    /// Whether any key lies below `path`: one ListObjectsV2 of at most one key.
    func hasKeys(below path: DriverPath) throws(StorageDriverError) -> Bool {
        let page = try call("list", path) { () throws(S3Failure) in
            try client.list(prefix: key(path) + "/", delimiter: nil, continuationToken: nil, maxKeys: 1)
        }
        return !page.objects.isEmpty || !page.prefixes.isEmpty
    }

    /// A multipart upload of `destination` made of `sourceKey`'s bytes in `copyPartSize` ranges
    /// (UploadPartCopy, the server copies), aborted if any part fails.
    private func copyInParts(from sourceKey: String, size: Int64, to destination: DriverPath) throws(StorageDriverError) {
        let destinationKey = key(destination)
        let uploadID = try call("move: create upload", destination) { () throws(S3Failure) in
            try client.createMultipartUpload(destinationKey)
        }
        do throws(StorageDriverError) {
            var etags: [String] = []
            var first: Int64 = 0
            while first < size {
                let last = min(first + tuning.copyPartSize, size) - 1
                let number = etags.count + 1
                etags.append(
                    try call("move: copy part", destination) { () throws(S3Failure) in
                        try client.uploadPartCopy(destinationKey, uploadID: uploadID, number: number, source: sourceKey, first: first, last: last)
                    })
                first = last + 1
            }
            try call("move: complete upload", destination) { () throws(S3Failure) in
                try client.completeMultipartUpload(destinationKey, uploadID: uploadID, etags: etags)
            }
        } catch {
            try? client.abortMultipartUpload(destinationKey, uploadID: uploadID)
            throw error
        }
    }

    /// Runs one client call, turning its failure into the driver's error for `path`.
    func call<T>(_ operation: String, _ path: DriverPath, _ body: () throws(S3Failure) -> T) throws(StorageDriverError) -> T {
        do {
            return try body()
        } catch {
            throw error.driverError(operation: "s3 \(operation)", path: path)
        }
    }
}

extension S3Failure {
    /// A missing key is `pathNotFound`; a refusal is EACCES; an object replaced under an open
    /// reader (412 to its If-Match) is ESTALE; an outage, a timeout or any other error answer is
    /// EIO, with the request (and so the endpoint) in the operation's text.
    func driverError(operation: String, path: DriverPath) -> StorageDriverError {
        switch self {
        case .notFound: .pathNotFound(path.value)
        case .accessDenied: .io(operation: "\(operation) (\(self))", path: path.value, errno: EACCES)
        case .server(_, 412, _, _): .io(operation: "\(operation) (the object changed since it was opened: \(self))", path: path.value, errno: ESTALE)
        case .server, .unreachable: .io(operation: "\(operation) (\(self))", path: path.value, errno: EIO)
        // The local file's own errno (ENOSPC, EIO): what the disk said, not the store.
        case .localWrite(_, let errno): .io(operation: "\(operation) (\(self))", path: path.value, errno: errno)
        }
    }
}
