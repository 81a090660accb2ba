import CFuse
import Dispatch
import Glibc

/// What the filesystem tells the kernel unasked: forget a cached name, drop a file's cached
/// pages. Behind a protocol so that the operations run in unit tests with no kernel (a recorder
/// stands in), as go-fuse's `ServerCallbacks` are stubbed.
protocol KernelNotices: Sendable {
    /// The kernel forgets `name` in the directory inode `parent`: its next use is a lookup.
    func forgetEntry(parent: UInt64, name: String)
    /// The kernel drops the cached pages of inode `inode`.
    func dropPages(of inode: UInt64)
}

/// Notices through a mounted libfuse session. Each is sent from another thread than the request
/// that decided it: a notice about an entry or pages the kernel is waiting on in this very request
/// (a lookup in the same directory, a read of those pages) would deadlock it.
struct SessionNotices: KernelNotices, @unchecked Sendable {
    /// A `fuse_session *`; libfuse's notify calls are thread-safe. Unchecked: a C pointer.
    let session: OpaquePointer

    func forgetEntry(parent: UInt64, name: String) {
        DispatchQueue.global().async {
            _ = name.withCString { fuse_lowlevel_notify_inval_entry(self.session, parent, $0, strlen($0)) }
        }
    }

    func dropPages(of inode: UInt64) {
        DispatchQueue.global().async {
            _ = fuse_lowlevel_notify_inval_inode(self.session, inode, 0, 0)
        }
    }
}
