import Distribution
import Storage
import Synchronization

/// What a file handle stands for: the kernel holds only its number (`fuse_file_info.fh`), an
/// index into the HandleTable.
enum OpenFile: Sendable {
    case blob(OpenBlob)
    case directory(OpenDirectory)
    case write(OpenWrite)
    case generated(GeneratedFile)
}

/// A file blobfs generates (an OCI layout's `index.json`, `oci-layout`), held whole by its handle.
final class GeneratedFile: Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) -> Int {
        guard offset >= 0, offset < Int64(bytes.count) else { return 0 }
        let count = min(buffer.count, bytes.count - Int(offset))
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<(Int(offset) + count)])) }
        return count
    }
}

/// One open blob file: its reader, whose size is already known. Held in the handle table.
final class OpenBlob: Sendable {
    let inode: UInt64
    let name: BlobName
    let reader: DataFileReader
    /// The data file's version when it was opened (nil with `--no-verify`, or where the driver
    /// cannot tell): only this version's bytes are served through this handle.
    let version: DataFileVersion?
    /// Whether the blob must still be checked before its bytes are served.
    let needsCheck: Atomic<Bool>
    /// Whether the kernel reads this open through a backing file or the daemon serves it; given
    /// back to `PassthroughFiles` at release.
    let grant: PassthroughFiles.Grant

    init(
        inode: UInt64, name: BlobName, reader: DataFileReader, version: DataFileVersion?, needsCheck: Bool,
        grant: PassthroughFiles.Grant = .untracked
    ) {
        self.grant = grant
        self.inode = inode
        self.name = name
        self.reader = reader
        self.version = version
        self.needsCheck = Atomic(needsCheck)
    }
}

/// A directory listing taken at opendir, served by offset to readdir and readdirplus.
final class OpenDirectory: Sendable {
    let inode: UInt64
    let entries: [BlobTree.Entry]

    init(inode: UInt64, entries: [BlobTree.Entry]) {
        self.inode = inode
        self.entries = entries
    }
}

/// A file open for writing on a read-write mount: an upload, or a rewrite of an existing blob.
final class OpenWrite: Sendable {
    enum Target: Sendable {
        case upload(PendingUpload)
        case rewrite(IdenticalRewrite)
    }

    let target: Target
    /// The blob's inode whose passthrough this open holds off (PassthroughFiles.beginWrite),
    /// released with the handle; nil when the mount counts no passthrough opens.
    let heldInode: UInt64?

    init(_ target: Target, heldInode: UInt64? = nil) {
        self.target = target
        self.heldInode = heldInode
    }
}
