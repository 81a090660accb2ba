import Distribution
import Testing

@Suite struct UploadTimestampTests {
    @Test func writesTheRegistrysExactFormat() {
        let t = UploadTimestamp(secondsSinceEpoch: 1_795_931_205)  // 2026-11-29T05:46:45Z
        #expect(t.rfc3339 == "2026-11-29T05:46:45Z")
        #expect(t.rfc3339.utf8.count == 20)
        #expect(UploadTimestamp(secondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00Z")
        #expect(UploadTimestamp(secondsSinceEpoch: 951_782_400).rfc3339 == "2000-02-29T00:00:00Z")
    }

    @Test func parsesWhatGoWrites() {
        #expect(UploadTimestamp(rfc3339: "2026-11-29T05:46:45Z")?.secondsSinceEpoch == 1_795_931_205)
        #expect(UploadTimestamp(rfc3339: "2026-11-29T05:46:45.123456789Z")?.secondsSinceEpoch == 1_795_931_205)
        #expect(UploadTimestamp(rfc3339: "2026-11-29T06:46:45+01:00")?.secondsSinceEpoch == 1_795_931_205)
        for bad in ["", "2026-11-29", "2026-11-29T05:46:45", "2026-13-01T00:00:00Z", "garbage garbage garb", "2026-11-29T05:46:45Z\n"] {
            #expect(UploadTimestamp(rfc3339: bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func roundTripsNow() {
        let now = UploadTimestamp.now()
        #expect(UploadTimestamp(rfc3339: now.rfc3339) == now)
    }
}
