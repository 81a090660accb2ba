import Distribution
import Synchronization

/// Symbolic links made in a repository's `tags/` under a temporary name: rsync updates a link
/// that changed as `symlink(target, ".<tag>.<n>")` then `rename(".<tag>.<n>", "<tag>")`. The
/// link exists only in this mount until its rename, which tags the manifest; an unlink, or the
/// unmount, drops it. (A link made under its tag's own name tags at once.)
final class PendingLinks: Sendable {
    struct Link: Sendable {
        let serial: UInt64
        let directory: String
        let name: String
        let manifest: Digest
    }

    private struct State {
        var bySerial: [UInt64: Link] = [:]
        var byName: [String: UInt64] = [:]
        var next: UInt64 = 1
    }

    private let state = Mutex(State())

    func add(_ name: String, in directory: String, to manifest: Digest) -> Link {
        state.withLock { state in
            let link = Link(serial: state.next, directory: directory, name: name, manifest: manifest)
            state.next += 1
            if let replaced = state.byName[directory + "/" + name] { state.bySerial[replaced] = nil }
            state.bySerial[link.serial] = link
            state.byName[directory + "/" + name] = link.serial
            return link
        }
    }

    subscript(serial: UInt64) -> Link? {
        state.withLock { $0.bySerial[serial] }
    }

    func named(_ name: String, in directory: String) -> Link? {
        state.withLock { state in state.byName[directory + "/" + name].flatMap { state.bySerial[$0] } }
    }

    func remove(_ link: Link) {
        state.withLock { state in
            state.bySerial[link.serial] = nil
            if state.byName[link.directory + "/" + link.name] == link.serial { state.byName[link.directory + "/" + link.name] = nil }
        }
    }
}
