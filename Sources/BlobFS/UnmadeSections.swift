import Distribution
import Synchronization

/// The sections of repositories made through this mount that the mount has not made yet: hidden
/// from lookups and listings until a `mkdir` makes them.
///
/// Why: a section appears in the store as a side effect of other writes (a manifest brings its
/// repository's `blobs/`, a tag file holding a manifest brings `manifests/`). GNU `cp -a` makes
/// each child of a directory it made itself without looking first, in the order of its source's
/// inodes, and fails on EEXIST ("cannot create directory"). The kernel answers that EEXIST
/// itself, from a LOOKUP that finds the section, before the daemon sees the MKDIR — so a section
/// that is already there must not be found by that LOOKUP. Every copying tool makes each
/// directory it restores (cp, rsync, tar), so hiding a section until then hides nothing from
/// them; the store itself (and a registry on it) sees the section as soon as it exists.
final class UnmadeSections: Sendable {
    /// Lock order: a leaf, never held across I/O.
    private let state = Mutex<[RepositoryName: Set<BlobTree.Section>]>([:])

    /// A repository name this mount has just made: none of its sections is made yet.
    func madeRepository(_ name: RepositoryName) {
        state.withLock { $0[name] = Set(BlobTree.Section.allCases) }
    }

    /// A `mkdir` of a section: shown from now on.
    func made(_ section: BlobTree.Section, of name: RepositoryName) {
        state.withLock { state in
            guard var unmade = state[name] else { return }
            unmade.remove(section)
            state[name] = unmade.isEmpty ? nil : unmade
        }
    }

    /// Whether the child `name` of the directory at `path` is a section hidden until it is made.
    /// Costs a dictionary probe only while some repository made here has unmade sections.
    func hides(_ name: String, in path: String) -> Bool {
        guard let section = BlobTree.Section(rawValue: name) else { return false }
        return state.withLock { state in
            guard !state.isEmpty, case .names(let repository?)? = BlobTree.place(of: path) else { return false }
            return state[repository]?.contains(section) ?? false
        }
    }
}
