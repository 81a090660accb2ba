import CLinux
import Glibc

/// Bytes at driver paths: the only layer that touches the disk. Synchronous and thread-safe.
public protocol StorageDriver: Sendable {
    /// A short name for logs ("filesystem", "inmemory").
    var name: String { get }
    /// The whole content of a small file; files over `limit` bytes are refused.
    func getContent(_ path: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8]
    /// Replaces a file's content atomically, creating parent directories.
    func putContent(_ path: DriverPath, _ content: [UInt8]) throws(StorageDriverError)
    /// Opens a file for positional reads.
    func reader(_ path: DriverPath) throws(StorageDriverError) -> any DriverFileReader
    /// Opens a file for appending, creating it (and its parents); `append: false` truncates it.
    func writer(_ path: DriverPath, append: Bool) throws(StorageDriverError) -> any DriverFileWriter
    func stat(_ path: DriverPath) throws(StorageDriverError) -> FileInfo
    /// `getContent` of `relative` (components of the path grammar joined by `/`) below
    /// `directory`, for many small reads in one directory (a repository's links, on every cold
    /// lookup): a driver that can hold `directory` open resolves `relative` from there. By
    /// default, `getContent` of the joined path.
    func getContent(_ relative: String, below directory: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8]
    /// `stat` of `relative` below `directory`, as `getContent(_:below:limit:)` resolves it.
    func stat(_ relative: String, below directory: DriverPath) throws(StorageDriverError) -> FileInfo
    /// Creates a directory and its parents; an existing directory is fine.
    func createDirectory(_ path: DriverPath) throws(StorageDriverError)
    /// The names of a directory's children, sorted.
    func list(_ path: DriverPath) throws(StorageDriverError) -> [String]
    /// The names of a directory's children, handed to `body` in batches as the storage reads them
    /// (a getdents64 buffer; a page of an object listing), unsorted, "." and ".." left out, each
    /// name as stored (the caller checks it): for a pass over many thousands of names that keeps
    /// none of them. `pathNotFound` if `path` is absent; an error if it is a file.
    func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError)
    /// Whether `enumerateNames(in:startingWith:)` asks the storage for just those names (one
    /// listing per prefix, which can run side by side), rather than filtering the whole listing.
    var listsByPrefix: Bool { get }
    /// The names of a directory's children that start with `prefix`, in batches as
    /// `enumerateNames(in:)` hands them; none (and no error) when the directory is absent.
    func enumerateNames(
        in path: DriverPath, startingWith prefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError)
    /// Renames a file, creating the destination's parents and replacing the destination.
    func move(from source: DriverPath, to destination: DriverPath) throws(StorageDriverError)
    /// Removes a file or a whole directory tree; `pathNotFound` if it is absent.
    func delete(_ path: DriverPath) throws(StorageDriverError)
    /// Visits everything below `path` depth-first in sorted order, never following links.
    func walk(_ path: DriverPath, _ visit: (WalkEntry) throws(StorageDriverError) -> WalkDecision) throws(StorageDriverError)
    /// Holds a directory open for many reads below it (`pathNotFound` if it is not a directory).
    func directory(_ path: DriverPath) throws(StorageDriverError) -> any DriverDirectory
    /// How much room the storage has; nil where it cannot tell (an object store, memory).
    func capacity() throws(StorageDriverError) -> StorageCapacity?
    /// Who owns the storage; nil where it has no owners.
    var owner: StorageOwner? { get }
    /// How many of this driver's requests a caller with many independent ones (a listing's link
    /// reads and stats) keeps in flight, and whether each is a network round trip. By default
    /// `.local`: one thread per CPU, for system calls.
    var requestConcurrency: RequestConcurrency { get }
}

extension StorageDriver {
    public func capacity() throws(StorageDriverError) -> StorageCapacity? { nil }
    public var owner: StorageOwner? { nil }
    public var requestConcurrency: RequestConcurrency { .local }

    public func getContent(_ relative: String, below directory: DriverPath, limit: Int) throws(StorageDriverError) -> [UInt8] {
        try getContent(try directory.appending(path: relative), limit: limit)
    }

    public func stat(_ relative: String, below directory: DriverPath) throws(StorageDriverError) -> FileInfo {
        try stat(try directory.appending(path: relative))
    }

    /// Small files only: links, `startedat`.
    public func getContent(_ path: DriverPath) throws(StorageDriverError) -> [UInt8] {
        try getContent(path, limit: 4 << 20)
    }

    /// The regular files named `member` in `path`'s child directories, with their content (up to
    /// `limit` bytes), sorted by child: a repository's `_layers/<alg>/*/link` in one pass. Each is
    /// opened relative to `path` held open, and the children are spread as `requestConcurrency`
    /// says (over the CPUs on a local disk; many round trips in flight on S3): a listing of
    /// thousands is that many opens, and its caller waits for all of them. A child or member
    /// that is a symbolic link (or another non-directory child) is reported as a failure, not left
    /// out: a listing says what it skipped, as a lookup of the same name fails.
    public func members(named member: String, in path: DriverPath, limit: Int) throws(StorageDriverError) -> [ChildMember] {
        precondition(
            !member.isEmpty && member.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." },
            "a member is a relative path of plain components")
        let directory = try directory(path)
        let children = try directory.entries().filter { $0.kind != .file }.map(\.name)
        return children.concurrentMap(requestConcurrency) { child in
            do throws(StorageDriverError) {
                let opened = try directory.open(child + "/" + member)
                guard opened.kind == .file, let reader = opened.reader else { return nil }
                guard opened.size <= limit else {
                    throw .tooLarge("\(path.value)/\(child)/\(member)", size: opened.size, limit: limit)
                }
                let content = try reader.readAll(expected: opened.size, limit: limit, path: "\(path.value)/\(child)/\(member)")
                return ChildMember(child: child, content: .success(content))
            } catch .pathNotFound {
                return nil  // absent, or removed meanwhile
            } catch {
                return ChildMember(child: child, content: .failure(error))
            }
        }.compactMap { $0 }
    }
}

extension DriverFileReader {
    /// The whole of a small file (`path`, for errors) whose size was `expected` when it was
    /// opened, at most `limit` bytes. One byte more is asked for, so a file that grew is seen; a
    /// regular file reads short only at its end, so one read usually does.
    func readAll(expected: Int64, limit: Int, path: String) throws(StorageDriverError) -> [UInt8] {
        var content = [UInt8](repeating: 0, count: Int(min(expected, Int64(limit))) + 1)
        var filled = 0
        while true {
            let asked = content.count - filled
            // `withUnsafeMutableBytes` rethrows untyped: the read's own error comes back as a `Result`.
            let n = try content.withUnsafeMutableBytes { bytes in
                Result { () throws(StorageDriverError) in
                    try read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[filled...]), at: Int64(filled))
                }
            }.get()
            filled += n
            if n == 0 || n < asked { break }
            guard content.count <= limit else {
                throw StorageDriverError.tooLarge(path, size: Int64(filled), limit: limit)
            }
            content += repeatElement(0, count: min(content.count, limit - content.count + 1))  // no overflow at Int.max
        }
        content.removeSubrange(filled...)
        return content
    }
}

/// One child directory's member file, as `members(named:in:limit:)` finds it.
public struct ChildMember: Sendable, Hashable {
    /// The child directory's name.
    public var child: String
    /// The member file's bytes, or why they could not be read (`tooLarge`, `io`).
    public var content: Result<[UInt8], StorageDriverError>

    public init(child: String, content: Result<[UInt8], StorageDriverError>) {
        self.child = child
        self.content = content
    }
}

/// What `walk` does after visiting an entry.
public enum WalkDecision: Sendable {
    case `continue`
    /// Do not descend into this directory.
    case skipDirectory
}

/// A file's kind; anything but regular files and directories is `other` and never followed.
public enum FileKind: Sendable, Hashable { case file, directory, other }

/// What `walk` reports of one path: no size, so that a walk costs no stat per entry.
public struct WalkEntry: Sendable, Hashable {
    public var path: DriverPath
    public var kind: FileKind

    public init(path: DriverPath, kind: FileKind) {
        self.path = path
        self.kind = kind
    }
}

/// What `stat` reports of one path.
public struct FileInfo: Sendable, Hashable {
    public typealias Kind = FileKind

    public var path: DriverPath
    public var kind: Kind
    /// Bytes for a regular file, 0 for anything else.
    public var size: Int64
    /// Modification time, seconds since the epoch.
    public var modified: Int64

    public init(path: DriverPath, kind: Kind, size: Int64, modified: Int64) {
        self.path = path
        self.kind = kind
        self.size = size
        self.modified = modified
    }

    public var isDirectory: Bool { kind == .directory }
}

/// Positional reads of one open file.
public protocol DriverFileReader: AnyObject, Sendable {
    /// Reads up to `buffer.count` bytes at `offset`; 0 at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int
    /// The file's current size.
    func currentSize() throws(StorageDriverError) -> Int64
    /// Which version of the file is open, where the driver can tell (nil where it cannot).
    func version() throws(StorageDriverError) -> FileVersion?
    /// The open file's descriptor on the local filesystem, valid while the reader lives; nil for
    /// storage that is not a local file (the kernel can then not read it directly).
    var localDescriptor: Int32? { get }
    /// Copies bytes `offset..<offset + count` of the file into the local file `descriptor`, at the
    /// same offset: how many were copied, fewer only where the file ends. A failed write of the
    /// local file is thrown as `.io` naming `localPath`, with its errno (ENOSPC stays ENOSPC).
    func copy(at offset: Int64, count: Int, intoFile descriptor: Int32, localPath: String) throws(StorageDriverError) -> Int
    /// Reads up to `buffer.count` bytes at `offset`, asking the storage for those bytes only: no
    /// rounding out to the driver's own blocks, nothing kept for later reads (a random reader's
    /// read). 0 at the end of the file.
    func readRange(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int
}

extension DriverFileReader {
    public func version() throws(StorageDriverError) -> FileVersion? { nil }
    public var localDescriptor: Int32? { nil }

    /// A read: a local file's is exactly its range anyway.
    public func readRange(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageDriverError) -> Int {
        try read(into: buffer, at: offset)
    }

    /// Through a buffer of at most 1 MiB: reads, then writes. (A driver whose bytes come from the
    /// network writes them into the file as they arrive instead: the S3 reader.)
    public func copy(at offset: Int64, count: Int, intoFile descriptor: Int32, localPath: String) throws(StorageDriverError) -> Int {
        guard count > 0 else { return 0 }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(count, 1 << 20), alignment: 16)
        defer { buffer.deallocate() }
        var copied = 0
        while copied < count {
            let wanted = min(buffer.count, count - copied)
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted]), at: offset + Int64(copied))
            if n == 0 { break }
            try LocalWrite.all(UnsafeRawBufferPointer(rebasing: buffer[..<n]), to: descriptor, at: offset + Int64(copied), path: localPath)
            copied += n
        }
        return copied
    }
}

/// pwrite until every byte is written, the way a copy into a local file needs it.
public enum LocalWrite {
    /// Starts writing `offset..<offset + length` of the file back to disk and returns at once, so
    /// that a later fsync finds most of a large file already written (best effort: a failure here
    /// is met again, and reported, by that fsync).
    public static func startWriteback(_ descriptor: Int32, offset: Int64, length: Int) {
        _ = blobfs_start_writeback(descriptor, offset, Int64(length))
    }

    /// Writes every byte at `offset` (again after a short write or EINTR); a failure is `.io`
    /// naming `path`, with the write's errno.
    public static func all(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, at offset: Int64, path: String) throws(StorageDriverError) {
        if let code = failure(writing: bytes, to: descriptor, at: offset) { throw .io(operation: "write", path: path, errno: code) }
    }

    /// The same, for callers that carry the errno on themselves (libcurl's write callback): nil
    /// when every byte was written.
    public static func failure(writing bytes: UnsafeRawBufferPointer, to descriptor: Int32, at offset: Int64) -> Int32? {
        var written = 0
        while written < bytes.count {
            let n = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset) + off_t(written))
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            written += n
        }
        return nil
    }
}

/// An append-only writer of one file.
public protocol DriverFileWriter: AnyObject, Sendable {
    /// The file's size: where the next write lands.
    var size: Int64 { get }
    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageDriverError)
    /// Makes the content durable (fsync).
    func commit() throws(StorageDriverError)
    /// Releases the file; idempotent.
    func close()
    /// Releases and removes the file.
    func cancel() throws(StorageDriverError)
}
