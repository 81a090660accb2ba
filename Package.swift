// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "blobfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "BlobCache", targets: ["BlobCache"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries, through pkg-config.
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(name: "CLinux"),

        // The vocabulary: digests, descriptors, errors, the blob protocols.
        .target(name: "Distribution", dependencies: ["CCrypto"]),
        // Bytes at driver paths; knows nothing of blobs.
        .target(name: "StorageDriver", dependencies: ["CLinux"]),
        // Descriptor caches (in-memory LRU, cachedBlobStatter, the shared conformance suite).
        .target(name: "BlobCache", dependencies: [
            "Distribution",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The registry's storage layer over a driver.
        .target(name: "Storage", dependencies: [
            "Distribution", "StorageDriver", "BlobCache",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Helpers shared by the test targets: temporary stores, a real docker-registry, HTTP.
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        .testTarget(name: "DistributionTests", dependencies: ["Distribution", "TestSupport"]),
        .testTarget(name: "StorageDriverTests", dependencies: ["StorageDriver", "TestSupport"]),
        .testTarget(name: "BlobCacheTests", dependencies: ["BlobCache", "Distribution"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageDriver", "BlobCache", "TestSupport"]),
        .testTarget(name: "InteropTests", dependencies: ["Storage", "StorageDriver", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
