import Distribution
import StorageDriver
import Synchronization

/// One blob of a repository's listing: its name (the link's digest) and its data file as the
/// disk has it, or why it cannot be read (a corrupt link, an unreadable data file).
public struct ListedBlob: Sendable {
    public let name: Digest
    public let file: Result<BlobDataFile, BlobError>
}

extension LinkedBlobStore {
    /// Every blob this repository links, sorted as `links()` is, each with its data file: what a
    /// listing of the repository shows. Links that are empty or whose data is gone (a GC
    /// leftover) are left out, as the registry answers "unknown" for them. `known` describes
    /// names the caller already holds (a name and the target its link holds now): those cost no
    /// request. The others cost one stat of their data file each, spread as the driver's
    /// `requestConcurrency` says while the caller waits for all of it (over the CPUs on a local
    /// disk; 32 round trips in flight on S3).
    ///
    /// On a local disk the stats go past every cache: a stat costs microseconds, an LRU smaller
    /// than the listing would miss on every entry, and a listing is no access check to remember.
    /// On a remote driver a stat is a HEAD of milliseconds, so what one found is remembered
    /// (`ListedDataFiles`) and the next listing of any repository linking that blob sends none.
    /// Links are always read from storage: membership is never taken from a memory.
    public func listing(known: @Sendable (_ name: Digest, _ target: Digest) -> BlobDataFile?) throws(BlobError) -> [ListedBlob] {
        let global = self.global
        let concurrency = driver.requestConcurrency
        let remembered = concurrency.isRemote ? global.listedFiles : nil
        let links = concurrency.isRemote ? try global.listedLinks.links(in: linkSet.root(repository)) { () throws(BlobError) in try self.links() } : try links()
        return links.concurrentMap(concurrency) { link -> ListedBlob? in
            let target: Digest?
            switch link.target {
            case .success(let digest): target = digest
            case .failure(let error): return ListedBlob(name: link.digest, file: .failure(error))
            }
            guard let target else { return nil }
            if let file = known(link.digest, target) ?? remembered?.file(of: target) {
                return ListedBlob(name: link.digest, file: .success(file))
            }
            do throws(BlobError) {
                let file = try global.dataFile(target)
                remembered?.remember(file)
                return ListedBlob(name: link.digest, file: .success(file))
            } catch .unknown {
                return nil
            } catch {
                return ListedBlob(name: link.digest, file: .failure(error))
            }
        }.compactMap { $0 }
    }
}

/// The data files listings of a remote store found, by digest: a HEAD's answer kept so that the
/// next listing sends none. Safe to believe because data files are content-addressed: the size
/// under a digest never changes (a data file of another size is a damaged store, which an open
/// reports when it hashes or checks the size). What a memory can miss is a deletion (a GC, a
/// blob deleted and pushed again, with a new time): a listing then still shows the blob, and an
/// open of it checks the link and the data file on storage as ever (`unknown`, ESTALE). Only
/// listings read and fill it; lookups and opens stat storage.
///
/// Bounded: past `capacity` blobs it starts again empty, so a store with more blobs than that
/// costs its listings their stats as if there were no memory, and never more.
final class ListedDataFiles: Sendable {
    /// About 150 bytes a blob: ~40 MiB at most.
    static let capacity = 1 << 18

    /// A leaf lock: nothing is taken while it is held, and no request runs under it.
    private let files = Mutex<[Digest: BlobDataFile]>([:])

    init() {}

    func file(of digest: Digest) -> BlobDataFile? {
        files.withLock { $0[digest] }
    }

    func remember(_ file: BlobDataFile) {
        files.withLock { files in
            if files.count >= Self.capacity { files.removeAll(keepingCapacity: true) }
            files[file.descriptor.digest] = file
        }
    }
}

/// The links listings of a remote store read, by repository, kept for `timeout`: on S3 a listing
/// reads each link with a GET (a second `ls -l` of 10,000 blobs took 6.8 s, where rclone answers
/// from its directory cache in 1 s), and a tool walking a tree lists a directory more than once.
/// What it can miss within the timeout is what another writer (the registry, another mount)
/// linked or unlinked meanwhile: a listing shows the repository as it was up to `timeout` ago,
/// and lookups and opens still read each link from storage. This mount's own writes forget the
/// repository's entry at once (`LinkedBlobStore.link`, `delete`). Never used for local drivers.
final class ListedLinks: Sendable {
    /// The default entry timeout for blobs (BlobFS's `blobTimeout`): a listing is no staler than the names the kernel
    /// holds. (10 s was too short: the first `ls -l` of 10,000 blobs on radosgw took 14 s, so
    /// the second found its links expired and read all of them again.)
    static let timeout: Duration = .seconds(60)
    /// Repositories remembered at once; past that it starts again empty.
    static let capacity = 256

    private struct Entry {
        let links: [RepositoryLink]
        let readAt: ContinuousClock.Instant
    }

    /// A leaf lock: no request runs under it (a miss reads the links with it released).
    private let entries = Mutex<[DriverPath: Entry]>([:])

    init() {}

    /// The links below `root` (a repository's `_layers`, or its manifest revisions) as a listing
    /// within the timeout read them, or `read()` now.
    func links(in root: DriverPath, _ read: () throws(BlobError) -> [RepositoryLink]) throws(BlobError) -> [RepositoryLink] {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[root] }), now - entry.readAt < Self.timeout { return entry.links }
        let links = try read()
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[root] = Entry(links: links, readAt: ContinuousClock.now)
        }
        return links
    }

    /// This mount linked or unlinked below `root`: its next listing reads storage.
    func forget(_ root: DriverPath) {
        entries.withLock { _ = $0.removeValue(forKey: root) }
    }
}
