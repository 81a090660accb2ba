/// The one error TestSupport throws; its text is meant to be read in a failed test's output.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, with whatever output (curl's stderr, the registry's log) explains it.
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
