// The blob service interfaces of the registry's design (docs/storage-format.md, Blob services and
// how the registry wires them), synchronous and thread-safe: the filesystem calls them from
// libfuse's worker threads.

/// Answers "which descriptor does this digest have here?"; may return a canonical digest
/// other than the one asked for (an alias lookup).
public protocol BlobStatter: Sendable {
    func stat(_ digest: Digest) throws(BlobError) -> Descriptor
}

/// A statter that can also record and forget descriptors: links, caches.
public protocol BlobDescriptorService: BlobStatter {
    /// Associates `digest` (possibly an alias) with a canonical descriptor.
    func setDescriptor(_ digest: Digest, _ descriptor: Descriptor) throws(BlobError)
    /// Forgets `digest` in this scope (unlinks or uncaches).
    func clear(_ digest: Digest) throws(BlobError)
}

/// Reads blobs.
public protocol BlobProvider: Sendable {
    /// The whole blob, for small blobs.
    func get(_ digest: Digest) throws(BlobError) -> [UInt8]
    /// A reader whose size is already known: opening costs no second stat.
    func open(_ digest: Digest) throws(BlobError) -> any BlobReader
}

/// Positional reads of one blob of known size; safe to share between threads.
public protocol BlobReader: AnyObject, Sendable {
    /// The descriptor the reader was opened for.
    var descriptor: Descriptor { get }
    /// Reads up to `buffer.count` bytes at `offset`; returns 0 only at or past the end.
    /// A data file that vanished or is shorter than the blob is an error, never a short read.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlobError) -> Int
}

/// An upload in progress; thread-safe, though its bytes only make sense from one writer.
public protocol BlobWriter: AnyObject, Sendable {
    /// The upload id (a lowercase UUIDv4).
    var id: String { get }
    var startedAt: UploadTimestamp { get }
    /// Bytes in the upload so far, including earlier writers of the same upload.
    var size: Int64 { get }
    /// Appends bytes at `size`. A write that fails on the storage (a full disk) ends the
    /// upload: it is removed, and every later write and commit reports that same error.
    func write(_ bytes: UnsafeRawBufferPointer) throws(BlobError)
    /// Verifies the content against `provisional`, stores it under its canonical digest,
    /// links both digests and removes the upload. On failure the upload is removed too.
    /// Writes after a commit are `uploadClosed`.
    func commit(provisional: Descriptor) throws(BlobError) -> Descriptor
    /// Abandons the upload and removes it; idempotent, and a no-op after commit. Later writes
    /// and commits are `uploadUnknown`: the upload is gone, as it is to a resume of its id.
    func cancel() throws(BlobError)
    /// Releases the file, keeping the upload for a later resume.
    func close() throws(BlobError)
}

extension BlobWriter {
    /// Appends the bytes of an array.
    public func write(_ bytes: [UInt8]) throws(BlobError) {
        // `withUnsafeBytes` rethrows untyped: the write's own error comes back as a `Result`.
        try bytes.withUnsafeBytes { raw in Result { () throws(BlobError) in try write(raw) } }.get()
    }
}

/// Starts and resumes uploads, and stores small blobs in one call.
public protocol BlobIngester: Sendable {
    func put(mediaType: String, _ bytes: [UInt8]) throws(BlobError) -> Descriptor
    func create() throws(BlobError) -> any BlobWriter
    func resume(id: String) throws(BlobError) -> any BlobWriter
}

/// Removes a blob from a scope.
public protocol BlobDeleter: Sendable {
    func delete(_ digest: Digest) throws(BlobError)
}

/// Lists the digests in a scope.
public protocol BlobEnumerator: Sendable {
    func enumerate(_ body: (Digest) throws(BlobError) -> Void) throws(BlobError)
}

/// The full blob service of one repository.
public protocol BlobStore: BlobStatter, BlobProvider, BlobIngester, BlobDeleter, BlobEnumerator {}
