import Distribution
import Storage

/// An image a tag names that the registry could not serve whole, and why.
public struct IncompleteImage: Sendable, Hashable {
    public let repository: RepositoryName
    public let tag: Tag
    public let manifest: Digest
    /// What is missing or unusable, one entry each, in the order found.
    public let missing: [String]

    /// `<repository>:<tag>`, as `docker pull` names the image.
    public var reference: String { "\(repository):\(tag)" }
}

/// What `ImageCheck.check` found.
public struct ImageCheckReport: Sendable {
    /// Tags checked, in every repository checked.
    public var images = 0
    public var incomplete: [IncompleteImage] = []
}

/// `blobfs verify --images`: whether every tag's image could be pulled from the store, as the
/// registry would serve it. A tag's closure is: its current link → the manifest's revision
/// link (or, as registry 2.8.2 also reads, a `_layers` link) and its data → for an image
/// manifest, its config and each layer linked in the repository's `_layers` with their data (a
/// foreign layer with URLs is exempt, as the registry exempts it) → for a list or an index, each
/// child manifest's own closure. Each manifest is checked once per repository however many tags
/// name it. This checks presence, not bytes: the scrub (`StoreScrubber`) hashes every blob.
public struct ImageCheck: Sendable {
    let registry: Registry

    public init(registry: Registry) {
        self.registry = registry
    }

    /// Checks every tag of `repository`, or of every repository.
    public func check(repository: RepositoryName? = nil) throws(BlobError) -> ImageCheckReport {
        var report = ImageCheckReport()
        let names: [RepositoryName]
        if let repository { names = [repository] } else { names = try registry.repositories() }
        for name in names {
            let store = try registry.repository(name)
            var known: [Digest: [String]] = [:]
            for link in try store.tags.currentLinks() {
                report.images += 1
                var visiting: Set<Digest> = []
                let missing = closure(of: link.digest, in: store, known: &known, visiting: &visiting)
                if !missing.isEmpty {
                    report.incomplete.append(IncompleteImage(repository: name, tag: link.tag, manifest: link.digest, missing: missing))
                }
            }
        }
        return report
    }

    /// What is missing below the manifest `digest`; empty when its whole closure is there.
    private func closure(
        of digest: Digest, in store: Repository, known: inout [Digest: [String]], visiting: inout Set<Digest>
    ) -> [String] {
        if let result = known[digest] { return result }
        // An index that names itself, directly or not, is no image.
        guard visiting.insert(digest).inserted else { return ["manifest \(digest) names itself"] }
        defer { visiting.remove(digest) }
        var missing: [String] = []
        let references: [ManifestReference]
        do {
            references = try ManifestContent.references(of: try manifestBytes(digest, in: store))
        } catch let error as BlobError {
            missing.append(Self.describe(error, of: "manifest \(digest)"))
            known[digest] = missing
            return missing
        } catch {
            missing.append("manifest \(digest) cannot be served: \(error)")
            known[digest] = missing
            return missing
        }
        for reference in references {
            switch reference.role {
            case .config, .layer:
                // A foreign layer lives at its URLs; the registry does not require its link.
                guard reference.urls.isEmpty else { continue }
                if let problem = blobProblem(reference.digest, in: store) {
                    missing.append("\(reference.role == .config ? "config" : "layer") \(reference.digest): \(problem)")
                }
            case .manifest:
                missing += closure(of: reference.digest, in: store, known: &known, visiting: &visiting)
            }
        }
        known[digest] = missing
        return missing
    }

    private func manifestBytes(_ digest: Digest, in store: Repository) throws -> [UInt8] {
        try store.manifests.get(digest)
    }

    /// Why a config or layer cannot be served from this repository; nil when it can.
    private func blobProblem(_ digest: Digest, in store: Repository) -> String? {
        do {
            _ = try store.blobs.resolve(digest)
            return nil
        } catch .unknown {
            return "not linked in the repository, or its data is gone"
        } catch {
            return "\(error)"
        }
    }

    private static func describe(_ error: BlobError, of what: String) -> String {
        if case .unknown = error { return "\(what): no revision link, or its data is gone" }
        return "\(what): \(error)"
    }
}
