import ArgumentParser

/// A duration on the command line: whole numbers with a unit, summed: `90s`, `30m`, `168h`,
/// `7d`, `1d12h`.
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    let seconds: Int64
    let description: String

    static let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]

    init?(argument: String) {
        var total: Int64 = 0
        var number: Int64?
        for character in argument {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (shifted, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(Int64(digit))
                guard !overflow1, !overflow2 else { return nil }
                number = sum
            } else if let unit = Self.units[character], let value = number {
                let (scaled, overflow1) = value.multipliedReportingOverflow(by: unit)
                let (sum, overflow2) = total.addingReportingOverflow(scaled)
                guard !overflow1, !overflow2 else { return nil }
                total = sum
                number = nil
            } else {
                return nil
            }
        }
        // Something given, and no number left without its unit.
        guard !argument.isEmpty, number == nil else { return nil }
        seconds = total
        description = argument
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
