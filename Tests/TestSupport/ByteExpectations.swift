import Testing

/// Expects two byte arrays to be equal, reporting sizes and the first difference instead of the
/// element-wise diff `#expect(a == b)` would compute (minutes of CPU for megabytes).
public func expectSameBytes(
    _ actual: [UInt8], _ expected: [UInt8], _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual != expected else { return }
    let firstDifference = (0..<min(actual.count, expected.count)).first { actual[$0] != expected[$0] } ?? min(actual.count, expected.count)
    Issue.record(
        "bytes differ\(comment.isEmpty ? "" : " (\(comment))"): got \(actual.count) bytes, expected \(expected.count); first difference at offset \(firstDifference)",
        sourceLocation: sourceLocation)
}
