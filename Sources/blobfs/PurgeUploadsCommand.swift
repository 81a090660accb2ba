import ArgumentParser
import Distribution
import S3
import Storage

/// `blobfs purge-uploads`: removes uploads that started too long ago, as the registry's
/// maintenance job does.
struct PurgeUploadsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge-uploads",
        abstract: "Remove unfinished uploads that started before a cutoff.",
        discussion: """
            Removes repositories/<name>/_uploads/<uuid> directories whose startedat is older than \
            --older-than, as the registry's upload purging does (on S3, also aborting their \
            multipart uploads). An upload without a readable \
            startedat is kept and listed. Prints each upload purged (or, with --dry-run, that \
            would be), each kept, each error, and a summary; exits 1 if any removal failed.
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

    @Option(help: ArgumentHelp("Purge uploads started longer ago than this: 90s, 30m, 168h, 7d, 1d12h.", valueName: "duration"))
    var olderThan: DurationArgument

    @Flag(help: "Only print what would be purged.")
    var dryRun = false

    func run() throws {
        bootstrapLogging(level: .warning)
        let store = try Preflight.store(storageRoot, s3: s3, configuration: nil)
        // `startedat` has whole seconds: "older than 0s" must include uploads started this second.
        let cutoff = UploadTimestamp.now() - olderThan.seconds + (olderThan.seconds == 0 ? 1 : 0)
        var report: PurgeReport
        do {
            report = try Registry(driver: store.driver).purgeUploads(startedBefore: cutoff, dryRun: dryRun)
        } catch {
            throw CommandFailure(error)
        }
        for upload in report.purged {
            print("\(dryRun ? "would purge" : "purged"): \(store.root)\(upload)")
        }
        if let s3 = store.driver as? S3Driver, !dryRun {
            // On S3 an upload's `data` is an open multipart upload until it is committed: it holds
            // the parts (and is billed) until aborted, and no listing of keys shows it.
            var aborted = 0
            for upload in report.purged {
                do {
                    aborted += try s3.abortMultipartUploads(below: upload)
                } catch {
                    report.errors.append("\(upload): aborting its multipart upload: \(error)")
                }
            }
            if aborted > 0 { print("aborted \(aborted) multipart upload\(aborted == 1 ? "" : "s") of the purged uploads") }
        }
        for upload in report.keptWithoutStartTime {
            print("kept (no start time): \(store.root)\(upload)")
        }
        for error in report.errors {
            print("error: \(store.root)\(error)")  // each starts with the upload's driver path
        }
        let n = report.purged.count
        let kept = report.keptWithoutStartTime.count
        print(
            "blobfs purge-uploads: \(dryRun ? "would purge" : "purged") \(n) upload\(n == 1 ? "" : "s") "
                + "started before \(cutoff) (older than \(olderThan)); kept \(kept) without a start time; "
                + "\(report.errors.count) error\(report.errors.count == 1 ? "" : "s")"
        )
        if !report.errors.isEmpty { throw ExitCode.failure }
    }
}
