import ArgumentParser
import Distribution
import Foundation
import Glibc
import Scrubber
import Storage

/// `blobfs verify`: re-hashes every blob and checks every link; one line per problem, a summary,
/// and an exit status a backup job can act on.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash every blob and check every repository's links.",
        discussion: """
            Prints one line per problem on standard output, `<kind>: <file>: <what>`, \
            then a summary line. The kinds:
              corrupt data            a blob's data does not hash to its digest
              missing data            a link's blob directory is there, its data
                                      file is not
              not a regular file      a link's data file is a symbolic link, a
                                      directory, a FIFO, a socket or a device
              unreadable              a data or link file that cannot be read
              garbage link            a link file that holds no sha256 digest
              empty link              an empty link file (an interrupted write)
              wrong link              a link (or alias) holding another blob
              link to a deleted blob  a link whose blob is gone: registry 2.x
                                      garbage collection leaves these by design;
                                      the blob reads as absent
              unreachable             a directory that is a symbolic link (never
                                      followed) or cannot be opened or listed:
                                      nothing below it was checked
            With --images, also checks that every tag's image could be pulled: \
            its manifest, then the config and layers it names (linked in the \
            repository, with data), or the child manifests of a list or an \
            index, one line per incomplete image:
              incomplete image        <repository>:<tag> (<manifest>): what is
                                      missing
            Exits 0 when the store is intact and 1 when anything is wrong; with \
            --ignore-deleted-blob-links, links to deleted blobs are still printed \
            but do not fail. Shows progress on standard error when it is a \
            terminal. Reads the store's files directly, not through a mount.

            With --format json, standard output is one JSON document instead \
            (keys sorted): "counts" (blobs, bytes, links, repositories and images \
            checked; problems in all, failing, and by kind), and "problems", each \
            with its "kind" (as above), "repository", "digest", "path", "dataPath", \
            "tag", "detail", "missing" and "failing" (null where there is none); \
            "intact" says whether the exit status is 0. The exit status and the \
            progress on standard error are the same as with text.
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The registry's storage root: the directory that holds docker/registry/v2, or s3://<bucket>/<rootdirectory>.",
            valueName: "storage-root")
    )
    var storageRoot: String

    @OptionGroup(title: "S3 options")
    var s3: S3StoreOptions

    @Option(help: ArgumentHelp("Check only this repository's links and the blobs they name.", valueName: "name"))
    var repository: String?

    @Flag(help: "Also check that every tag's image is complete: its manifest, config and layers, or its index's children.")
    var images = false

    @Flag(help: "Report links to deleted blobs (left by registry 2.x garbage collection) without failing.")
    var ignoreDeletedBlobLinks = false

    @Option(
        help: ArgumentHelp(
            "The verification ledger of mounts that use --remember-verified: blobs that hash right are recorded in it, "
                + "blobs found corrupt are taken out of it (so those mounts hash them again, and fail their reads).",
            valueName: "file"))
    var rememberVerified: String?

    @Option(help: ArgumentHelp("text: one line per problem and a summary; json: one JSON document (see above).", valueName: "text|json"))
    var format: ReportFormat = .text

    enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func run() throws {
        bootstrapLogging(level: .warning)
        let text = format == .text
        let name: RepositoryName?
        do {
            name = try repository.map { try RepositoryName($0) }
        } catch {
            throw CommandFailure.usage("\(error)")
        }
        let store = try Preflight.store(storageRoot, s3: s3, configuration: nil)
        let ledger: VerificationLedger?
        do {
            ledger = try rememberVerified.map { try VerificationLedger(path: $0) }
        } catch {
            throw CommandFailure("\(error)")
        }
        let progress = ProgressLine()
        let report: ScrubReport
        do {
            report = try StoreScrubber(registry: Registry(driver: store.driver)).scrub(
                repository: name,
                // Small blobs cost system calls more than hashing: one reader per CPU.
                workers: ProcessInfo.processInfo.activeProcessorCount,
                onProblem: { problem in
                    guard text else { return }
                    progress.clear()
                    writeStandardOutput(problem.line(root: store.root) + "\n")
                },
                // What hashed right is what mounts with the same ledger need not hash again.
                onIntact: ledger.map { ledger in { ledger.record($0, $1) } },
                onProgress: { state in progress.update { Self.describe(state) } })
        } catch {
            progress.clear()
            throw CommandFailure(error)
        }
        progress.clear()
        if text { writeStandardOutput(Self.summary(report, root: store.root, repository: name) + "\n") }
        var ledgerReport: VerifyReport.Ledger?
        if let ledger {
            // Bit rot leaves a data file's version as it was: only a hash finds it, and then the
            // ledger must stop vouching for the blob.
            let corrupt = Set(report.problems.filter { $0.kind == .corruptData }.compactMap(\.digest))
            let dropped = ledger.forget(corrupt)
            ledgerReport = VerifyReport.Ledger(path: ledger.path, forgotten: dropped)
            if text && dropped > 0 { writeStandardOutput("taken out of the verification ledger \(ledger.path): \(dropped) corrupt blob(s)\n") }
        }
        var incompleteImages = 0
        var imageReport: ImageCheckReport?
        if images {
            let checked: ImageCheckReport
            do {
                checked = try ImageCheck(registry: Registry(driver: store.driver)).check(repository: name)
            } catch {
                throw CommandFailure(error)
            }
            imageReport = checked
            incompleteImages = checked.incomplete.count
        }
        if text, let checked = imageReport {
            for image in checked.incomplete {
                writeStandardOutput("incomplete image: \(image.reference) (\(image.manifest)): \(image.missing.joined(separator: "; "))\n")
            }
            writeStandardOutput(
                "blobfs verify --images: \(checked.images) tagged image\(checked.images == 1 ? "" : "s") checked, "
                    + (incompleteImages == 0 ? "all complete" : "\(incompleteImages) incomplete") + "\n")
        }
        if format == .json {
            let document = VerifyReport(
                storageRoot: store.root, repository: name, scrub: report, images: imageReport,
                ignoringDeletedBlobLinks: ignoreDeletedBlobLinks, ledger: ledgerReport)
            do {
                writeStandardOutput(String(decoding: try document.json(), as: UTF8.self) + "\n")
            } catch {
                throw CommandFailure("cannot encode the report: \(error)")
            }
        }
        let failing = report.problems.filter { !(ignoreDeletedBlobLinks && $0.kind == .linkToDeletedBlob) }
        if !failing.isEmpty || incompleteImages > 0 { throw ExitCode.failure }
    }

    static func describe(_ state: ScrubProgress) -> String {
        switch state.phase {
        case .blobs:
            "verifying blobs: \(state.blobsChecked)/\(state.blobsTotal), "
                + "\(formatBytes(state.bytesHashed)) of \(formatBytes(state.bytesTotal))"
        case .links:
            "checking links: repository \(state.repositoriesChecked + 1)/\(state.repositoriesTotal) "
                + "\(state.repository?.value ?? ""), \(state.linksChecked) links, \(formatBytes(state.bytesHashed)) hashed"
        }
    }

    static func summary(_ report: ScrubReport, root: String, repository: RepositoryName?) -> String {
        let scope = repository.map { "repository \($0) in \(root)" } ?? root
        let checked =
            "\(report.blobsChecked) blob\(report.blobsChecked == 1 ? "" : "s") (\(formatBytes(report.bytesHashed))) re-hashed, "
            + "\(report.linksChecked) link\(report.linksChecked == 1 ? "" : "s") in \(report.repositoriesChecked) "
            + "repositor\(report.repositoriesChecked == 1 ? "y" : "ies") checked"
        guard !report.isIntact else { return "blobfs verify: \(scope) is intact: \(checked)" }
        let counts = StoreProblem.Kind.allCases.compactMap { kind in
            let n = report.count(kind)
            return n == 0 ? nil : "\(n) \(kind.rawValue)"
        }
        var line =
            "blobfs verify: \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") in \(scope) "
            + "(\(counts.joined(separator: ", "))); \(checked)"
        if report.count(.linkToDeletedBlob) > 0 {
            line += ". Links to deleted blobs are what registry 2.x garbage collection leaves behind; those blobs read as absent"
        }
        return line
    }
}
