/// Why a command stops: printed as `blobfs: <message>` on standard error, exit status 1, or 2
/// for a command line that cannot work (the usage-error convention).
struct CommandFailure: Error, Sendable, CustomStringConvertible {
    var message: String
    var exitCode: Int32

    init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }

    /// A command line that cannot work as written.
    static func usage(_ message: String) -> CommandFailure {
        CommandFailure(message, exitCode: 2)
    }

    /// Any error as a failure, keeping a failure as it is.
    init(_ error: any Error) {
        self = error as? CommandFailure ?? CommandFailure("\(error)")
    }

    var description: String { message }
}
