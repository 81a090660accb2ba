import Distribution

extension Registry {
    /// How many names every blob has across the store: for each canonical digest, the link files
    /// of every repository's `_layers` that hold it (a repository linking a blob under its sha256
    /// and a sha512 alias gives it two names). One pass over every repository's links; empty,
    /// corrupt and unreadable links count for nothing.
    public func linkCensus() throws(BlobError) -> [Digest: Int] {
        var counts: [Digest: Int] = [:]
        for name in try repositories() {
            for link in try repository(name).blobs.links() {
                if case .success(let target?) = link.target { counts[target, default: 0] += 1 }
            }
        }
        return counts
    }
}
