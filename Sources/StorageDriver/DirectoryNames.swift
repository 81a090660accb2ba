/// One batch of a directory's names, as `StorageDriver.enumerateNames(in:_:)` hands them over:
/// the bytes the storage returned, read in place, so that a pass over a hundred thousand names
/// (the link census) makes no `String` and no array per name. A batch and the bytes it gives are
/// valid only during the call that receives it.
public struct DirectoryNames {
    enum Layout {
        /// Linux `struct linux_dirent64` records, as getdents64(2) fills a buffer.
        case linuxDirents
        /// Names one after another, each ended by a NUL byte.
        case nulTerminated
    }

    let bytes: UnsafeRawBufferPointer
    let layout: Layout

    init(bytes: UnsafeRawBufferPointer, layout: Layout) {
        self.bytes = bytes
        self.layout = layout
    }

    /// A batch of names each ended by a NUL byte (a name never holds NUL or `/`), for drivers
    /// whose listing comes as separate names (a page of an object listing).
    public init(nulTerminated bytes: UnsafeRawBufferPointer) {
        self.init(bytes: bytes, layout: .nulTerminated)
    }

    /// Calls `body` with each name's bytes, without its terminating NUL; "." and ".." are left out.
    public func forEach<E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> Void) throws(E) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let name: UnsafeRawBufferPointer
            switch layout {
            case .linuxDirents:
                // d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), then d_name ended by NUL
                // within the record's d_reclen bytes.
                let recordLength = Int(base.loadUnaligned(fromByteOffset: offset + 16, as: UInt16.self))
                guard recordLength > 19, offset + recordLength <= bytes.count else { return }  // never from the kernel
                let start = base + offset + 19
                name = UnsafeRawBufferPointer(start: start, count: Self.length(start, within: recordLength - 19))
                offset += recordLength
            case .nulTerminated:
                let start = base + offset
                let length = Self.length(start, within: bytes.count - offset)
                name = UnsafeRawBufferPointer(start: start, count: length)
                offset += length + 1
            }
            if Self.isDotOrDotDot(name) { continue }
            try body(name)
        }
    }

    /// How many bytes before the first NUL, at most `limit`.
    private static func length(_ start: UnsafeRawPointer, within limit: Int) -> Int {
        var length = 0
        while length < limit && start.load(fromByteOffset: length, as: UInt8.self) != 0 { length += 1 }
        return length
    }

    private static func isDotOrDotDot(_ name: UnsafeRawBufferPointer) -> Bool {
        let dot = UInt8(ascii: ".")
        return (name.count == 1 && name[0] == dot) || (name.count == 2 && name[0] == dot && name[1] == dot)
    }
}

extension StorageDriver {
    /// For drivers whose listing is an array of names already: it is handed over in batches of
    /// at most `batchSize` names.
    public func enumerateNames(in path: DriverPath, _ body: (DirectoryNames) throws(StorageDriverError) -> Void) throws(StorageDriverError) {
        try DirectoryNames.batches(of: try list(path), body)
    }

    public var listsByPrefix: Bool { false }

    /// The whole listing, filtered.
    public func enumerateNames(
        in path: DriverPath, startingWith prefix: String, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        let names: [String]
        do throws(StorageDriverError) {
            names = try list(path)
        } catch .pathNotFound {
            return
        }
        try DirectoryNames.batches(of: names.filter { $0.hasPrefix(prefix) }, body)
    }
}

extension DirectoryNames {
    /// Names per batch where a driver packs separate names: as many as an object listing's page.
    static let batchSize = 1000

    /// Packs `names` into batches of NUL-terminated names and hands each to `body`.
    static func batches<Names: Collection<String>>(
        of names: Names, _ body: (DirectoryNames) throws(StorageDriverError) -> Void
    ) throws(StorageDriverError) {
        var packed: [UInt8] = []
        var start = names.startIndex
        while start != names.endIndex {
            let end = names.index(start, offsetBy: batchSize, limitedBy: names.endIndex) ?? names.endIndex
            packed.removeAll(keepingCapacity: true)
            for name in names[start..<end] {
                packed.append(contentsOf: name.utf8)
                packed.append(0)
            }
            // `withUnsafeBytes` rethrows untyped: the body's own error comes back as a `Result`.
            try packed.withUnsafeBytes { bytes in
                Result { () throws(StorageDriverError) in try body(DirectoryNames(nulTerminated: bytes)) }
            }.get()
            start = end
        }
    }
}
