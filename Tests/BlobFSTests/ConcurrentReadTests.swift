import Distribution
import Foundation
import Glibc
import Testing
import TestSupport

/// Many readers at once, on libfuse's worker threads: every one gets exactly the blob's bytes.
@Suite struct ConcurrentReadTests {
    @Test func eightReadersOfOneLargeBlobAndOfManySmallBlobsGetCorrectBytes() throws {
        let workspace = try Workspace("concurrent")
        defer { workspace.remove() }
        let large = seededBytes(count: 64 << 20, seed: 100)
        var contents: [(repository: String, bytes: [UInt8])] = [("big/one", large)]
        for index in 0..<48 {
            // Sizes around page and request boundaries, up to ~600 KiB.
            let size = [1, 4095, 4096, 4097, 131_072, 131_073][index % 6] + index * 12_289
            contents.append(("small/set\(index % 3)", seededBytes(count: size, seed: 200 + UInt64(index))))
        }
        let blobs = try writeStore(root: workspace.root, contents)
        let big = blobs[0]
        let small = Array(blobs.dropFirst())

        try BlobfsMount.withMount(root: workspace.root, mountpoint: workspace.mountpoint) { mount in
            let failures = Problems()
            let bigPath = mount.path(big.relativePath)
            // 8 readers of the large blob, cold, all starting together: half through the page cache
            // with different request sizes, half with O_DIRECT so every request reaches the daemon;
            // and at the same time 8 readers of all the small blobs, each in another order.
            let finished = onThreads(16) { index in
                if index < 8 {
                    let chunk = [4096, 65_536, 131_072, 1 << 20][index % 4] * (index < 4 ? 1 : 2)
                    if let problem = readAndCompare(bigPath, expected: large, chunk: chunk, direct: index >= 4) {
                        failures.add("large reader \(index): \(problem)")
                    }
                } else {
                    let reader = index - 8
                    for step in 0..<small.count {
                        let blob = small[(step * (reader + 1) + reader * 7) % small.count]
                        if let problem = readAndCompare(mount.path(blob.relativePath), expected: blob.bytes, chunk: 32_768) {
                            failures.add("small reader \(reader): \(problem)")
                        }
                    }
                }
            }
            #expect(finished, "readers still blocked after 90 s\n\(mount.log.tail(3000))")
            let problems = failures.all
            #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))\n--- blobfs log ---\n\(mount.log.tail(3000))")

            // And 8 processes hashing the large blob at once.
            let processes = try (0..<8).map { _ in try Command.start("sha256sum", [bigPath]) }
            for process in processes {
                let result = try process.wait(timeout: 90)
                #expect(result.status == 0 && result.stdoutText.hasPrefix(big.canonical.hex + " "), "\(result)")
            }
        }
    }
}
