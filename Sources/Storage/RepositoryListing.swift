import Distribution
import StorageDriver

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
    /// system call. The others cost one stat of their data file each, past the descriptor cache
    /// (an LRU smaller than the listing would miss on every entry, and a listing is no access
    /// check to remember), spread over the CPUs while the caller waits for all of it.
    public func listing(known: @Sendable (_ name: Digest, _ target: Digest) -> BlobDataFile?) throws(BlobError) -> [ListedBlob] {
        let global = self.global
        return try links().concurrentMap { link -> ListedBlob? in
            let target: Digest?
            switch link.target {
            case .success(let digest): target = digest
            case .failure(let error): return ListedBlob(name: link.digest, file: .failure(error))
            }
            guard let target else { return nil }
            if let file = known(link.digest, target) { return ListedBlob(name: link.digest, file: .success(file)) }
            do throws(BlobError) {
                return ListedBlob(name: link.digest, file: .success(try global.dataFile(target)))
            } catch .unknown {
                return nil
            } catch {
                return ListedBlob(name: link.digest, file: .failure(error))
            }
        }.compactMap { $0 }
    }
}
