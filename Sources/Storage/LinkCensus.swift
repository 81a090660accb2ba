import Distribution
import StorageDriver

extension Registry {
    /// How many names every blob has across the store: for each canonical digest, the link files
    /// of every repository's `_layers` that name it (a repository linking a blob under its sha256
    /// and a sha512 alias gives it two names). Cheap enough to take at a mount's first need: a
    /// sha256 name's link must hold that very digest (`LinkedBlobStatter.checkTarget`), so those
    /// names are counted from directory listings alone; only alias links (sha384, sha512) are
    /// read. An empty or dangling sha256 link still counts: the count is what tools compare
    /// hard-link numbers with, and one too many only means a partner they do not find.
    public func linkCensus() throws(BlobError) -> [Digest: Int] {
        var counts: [Digest: Int] = [:]
        for name in try repositories() {
            let root = PathMapper.path(.layers(name))
            let algorithms: [DigestAlgorithm]
            do throws(StorageDriverError) {
                algorithms = try driver.list(root).compactMap(DigestAlgorithm.init(rawValue:))
            } catch .pathNotFound {
                continue
            } catch {
                throw error.blobError
            }
            for algorithm in algorithms {
                guard let directory = try? root.appending(algorithm.rawValue) else { continue }
                if algorithm == .sha256 {
                    let names: [String]
                    do throws(StorageDriverError) { names = try driver.list(directory) } catch .pathNotFound { continue } catch { throw error.blobError }
                    for hex in names {
                        if let digest = try? Digest(parsing: "sha256:\(hex)") { counts[digest, default: 0] += 1 }
                    }
                } else {
                    let members: [ChildMember]
                    do throws(StorageDriverError) {
                        members = try driver.members(named: "link", in: directory, limit: LinkedBlobStatter.linkLimit)
                    } catch .pathNotFound { continue } catch { throw error.blobError }
                    for member in members {
                        let path = (try? directory.appending(member.child).appending("link")) ?? directory
                        if let target = try? LinkedBlobStatter.target(ofLink: member.content, at: path) { counts[target, default: 0] += 1 }
                    }
                }
            }
        }
        return counts
    }
}
