@testable import BlobFS
import CFuse
import Glibc
import Testing

/// The passthrough hooks on synthetic requests and replies laid out as the kernel and libfuse 3.14
/// lay them out: INIT is patched only when the kernel offered passthrough and no writeback cache
/// was negotiated, an OPEN reply only when the sending thread set a backing id, and nothing else
/// is touched.
@Suite struct PassthroughHookTests {
    private static let initUnique: UInt64 = 2

    /// The kernel's INIT request: header and a 64-byte init_in (or the 16-byte one of old kernels).
    private func initRequest(unique: UInt64 = initUnique, flags: UInt32, flags2: UInt32, shortBody: Bool = false) -> [UInt8] {
        var header = blobfs_fuse_in_header()
        header.opcode = BLOBFS_FUSE_INIT
        header.unique = unique
        var body = blobfs_fuse_init_in()
        body.major = 7
        body.minor = 45
        body.flags = flags
        body.flags2 = flags2
        let bodyBytes = withUnsafeBytes(of: body) { Array($0) }
        var bytes = withUnsafeBytes(of: header) { Array($0) } + (shortBody ? Array(bodyBytes[..<16]) : bodyBytes)
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt32($0.count), as: UInt32.self) }
        return bytes
    }

    private let offering = (flags: BLOBFS_FUSE_INIT_EXT | 0x3fff_fffb, flags2: UInt32(0x5fd))

    /// libfuse's INIT reply as `do_init` builds it: the kernel's flags it kept, minor 31.
    private func initReply(unique: UInt64 = initUnique, error: Int32 = 0, flags: UInt32 = BLOBFS_FUSE_INIT_EXT) -> (
        header: blobfs_fuse_out_header, body: blobfs_fuse_init_out
    ) {
        var header = blobfs_fuse_out_header()
        header.unique = unique
        header.error = error
        var body = blobfs_fuse_init_out()
        body.major = 7
        body.minor = 31
        body.flags = flags
        body.flags2 = 0x1
        return (header, body)
    }

    /// Sends header and body through the writev hook's patch, as two iovecs; returns what went out.
    private func send<Body>(
        _ negotiation: PassthroughNegotiation, _ header: blobfs_fuse_out_header, _ body: Body, bodyLength: Int? = nil
    ) -> (header: blobfs_fuse_out_header, body: Body) {
        var header = header
        var body = body
        withUnsafeMutableBytes(of: &header) { head in
            withUnsafeMutableBytes(of: &body) { tail in
                var iov = [
                    iovec(iov_base: head.baseAddress, iov_len: head.count),
                    iovec(iov_base: tail.baseAddress, iov_len: bodyLength ?? tail.count),
                ]
                iov.withUnsafeMutableBufferPointer { negotiation.patchReply($0.baseAddress!, count: $0.count) }
            }
        }
        return (header, body)
    }

    private func note(_ negotiation: PassthroughNegotiation, _ request: [UInt8]) {
        request.withUnsafeBytes { negotiation.noteRequest($0) }
    }

    @Test func initIsPatchedWhenTheKernelOffersPassthrough() {
        let negotiation = PassthroughNegotiation()
        note(negotiation, initRequest(flags: offering.flags, flags2: offering.flags2))
        let reply = initReply()
        let sent = send(negotiation, reply.header, reply.body)
        #expect(sent.body.flags == reply.body.flags | BLOBFS_FUSE_INIT_EXT)
        #expect(sent.body.flags2 == reply.body.flags2 | BLOBFS_FUSE_PASSTHROUGH_FLAGS2)
        #expect(sent.body.max_stack_depth == 1)
        #expect(sent.body.major == 7 && sent.body.minor == 31 && sent.body.max_write == 0)
        #expect(negotiation.outcome == .negotiated)
    }

    @Test func aStoreOnOverlayfsAsksForStackDepthTwoAndNeverMore() {
        let negotiation = PassthroughNegotiation()
        negotiation.setStackDepth(2)
        note(negotiation, initRequest(flags: offering.flags, flags2: offering.flags2))
        #expect(send(negotiation, initReply().header, initReply().body).body.max_stack_depth == 2)
        let greedy = PassthroughNegotiation(stackDepth: 7)
        note(greedy, initRequest(flags: offering.flags, flags2: offering.flags2))
        #expect(send(greedy, initReply().header, initReply().body).body.max_stack_depth == 2)
    }

    @Test func initIsLeftAloneWhenNotOffered() {
        for (flags, flags2, short) in [
            (offering.flags, offering.flags2 & ~BLOBFS_FUSE_PASSTHROUGH_FLAGS2, false),  // no bit 37
            (offering.flags & ~BLOBFS_FUSE_INIT_EXT, offering.flags2, false),  // flags2 without INIT_EXT means nothing
            (offering.flags, offering.flags2, true),  // an init_in too short to hold flags2
        ] {
            let negotiation = PassthroughNegotiation()
            note(negotiation, initRequest(flags: flags, flags2: flags2, shortBody: short))
            let reply = initReply(flags: 0)
            let sent = send(negotiation, reply.header, reply.body)
            #expect(sent.body.flags == 0 && sent.body.flags2 == reply.body.flags2 && sent.body.max_stack_depth == 0)
            #expect(negotiation.outcome == .notOffered)
        }
    }

    @Test func initIsLeftAloneWithTheWritebackCache() {
        let negotiation = PassthroughNegotiation()
        note(negotiation, initRequest(flags: offering.flags, flags2: offering.flags2))
        let reply = initReply(flags: BLOBFS_FUSE_INIT_EXT | BLOBFS_FUSE_WRITEBACK_CACHE)
        let sent = send(negotiation, reply.header, reply.body)
        #expect(sent.body.flags == reply.body.flags && sent.body.flags2 == reply.body.flags2 && sent.body.max_stack_depth == 0)
        #expect(negotiation.outcome == .writebackCache)
    }

    @Test func anInitErrorReplyOrShortBodyIsLeftAlone() {
        let failed = PassthroughNegotiation()
        note(failed, initRequest(flags: offering.flags, flags2: offering.flags2))
        let error = initReply(error: -EPROTO)
        let sentError = send(failed, error.header, error.body)
        #expect(sentError.body.flags2 == error.body.flags2 && sentError.body.max_stack_depth == 0)
        #expect(failed.outcome == .initFailed)

        let short = PassthroughNegotiation()
        note(short, initRequest(flags: offering.flags, flags2: offering.flags2))
        let reply = initReply()
        let sentShort = send(short, reply.header, reply.body, bodyLength: 24)  // an old protocol's init_out
        #expect(sentShort.body.flags2 == reply.body.flags2 && sentShort.body.max_stack_depth == 0)
        #expect(short.outcome == .initFailed)
    }

    @Test func onlyTheReplyToTheInitRequestIsPatched() {
        let negotiation = PassthroughNegotiation()
        note(negotiation, initRequest(flags: offering.flags, flags2: offering.flags2))
        // Another reply of the same shape (another unique) and a notification (unique 0).
        for unique: UInt64 in [3, 0] {
            let other = initReply(unique: unique)
            let sent = send(negotiation, other.header, other.body)
            #expect(sent.body.flags2 == other.body.flags2 && sent.body.max_stack_depth == 0)
        }
        #expect(negotiation.outcome == .pending)
        // A request that is not INIT is not noted.
        var lookup = initRequest(unique: 9, flags: offering.flags, flags2: offering.flags2)
        lookup[4] = 1  // opcode FUSE_LOOKUP
        note(negotiation, lookup)
        _ = send(negotiation, initReply(unique: 9).header, initReply(unique: 9).body)
        #expect(negotiation.outcome == .pending)
    }

    private func openReply(unique: UInt64 = 40, error: Int32 = 0) -> (header: blobfs_fuse_out_header, body: blobfs_fuse_open_out) {
        var header = blobfs_fuse_out_header()
        header.unique = unique
        header.error = error
        var body = blobfs_fuse_open_out()
        body.fh = 5
        body.open_flags = UInt32(1 << 5)  // FOPEN_NOFLUSH, as libfuse sets it from fi->noflush
        return (header, body)
    }

    @Test func anOpenReplyIsPatchedOnlyWithAPendingID() {
        let negotiation = PassthroughNegotiation()
        let plain = openReply()
        let untouched = send(negotiation, plain.header, plain.body)
        #expect(untouched.body.open_flags == plain.body.open_flags && untouched.body.backing_id == 0)

        PendingBackingID.current = 7
        defer { PendingBackingID.current = 0 }
        let sent = send(negotiation, plain.header, plain.body)
        #expect(sent.body.open_flags == plain.body.open_flags | BLOBFS_FOPEN_PASSTHROUGH)
        #expect(sent.body.backing_id == 7 && sent.body.fh == 5)
        #expect(PendingBackingID.current == 0, "the hook marks the id as used")
        // Used once: the next reply of this thread goes out as it is.
        let next = send(negotiation, plain.header, plain.body)
        #expect(next.body.open_flags == plain.body.open_flags && next.body.backing_id == 0)
    }

    @Test func errorsNotificationsAndOtherShapesKeepTheirBytesWithAPendingID() {
        let negotiation = PassthroughNegotiation()
        PendingBackingID.current = 7
        defer { PendingBackingID.current = 0 }
        let failed = openReply(error: -ENOENT)
        #expect(send(negotiation, failed.header, failed.body).body.backing_id == 0)
        let notification = openReply(unique: 0)
        #expect(send(negotiation, notification.header, notification.body).body.backing_id == 0)
        let shorter = openReply()
        #expect(send(negotiation, shorter.header, shorter.body, bodyLength: 8).body.backing_id == 0)
        // An entry reply (128 bytes) is not an open reply.
        var header = blobfs_fuse_out_header()
        header.unique = 41
        let entry = [UInt8](repeating: 0xab, count: 128)
        var sentEntry = entry
        withUnsafeMutableBytes(of: &header) { head in
            sentEntry.withUnsafeMutableBytes { tail in
                var iov = [iovec(iov_base: head.baseAddress, iov_len: head.count), iovec(iov_base: tail.baseAddress, iov_len: tail.count)]
                iov.withUnsafeMutableBufferPointer { negotiation.patchReply($0.baseAddress!, count: $0.count) }
            }
        }
        #expect(sentEntry == entry)
        #expect(PendingBackingID.current == 7, "no reply took the id")
    }

    @Test func thePendingIDBelongsToOneThread() {
        PendingBackingID.current = 11
        defer { PendingBackingID.current = 0 }
        var seen: Int32 = -1
        var thread = pthread_t()
        withUnsafeMutablePointer(to: &seen) { pointer in
            _ = pthread_create(&thread, nil, { argument in
                argument!.assumingMemoryBound(to: Int32.self).pointee = PendingBackingID.current
                return nil
            }, pointer)
            pthread_join(thread, nil)
        }
        #expect(seen == 0)
    }
}
