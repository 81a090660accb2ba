/// A byte count for people: `512 B`, `3.0 MiB`, `1.2 GiB` (binary units, one decimal).
func formatBytes(_ count: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    guard count >= 1024 else { return "\(count) B" }
    var unit = 0
    var scaled = Double(count)
    while scaled >= 1024, unit < units.count - 1 {
        scaled /= 1024
        unit += 1
    }
    let tenths = Int((scaled * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}
