// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "blobfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "S3", targets: ["S3"]),
        .library(name: "BlobCache", targets: ["BlobCache"]),
        .library(name: "Scrubber", targets: ["Scrubber"]),
        .library(name: "BlobFS", targets: ["BlobFS"]),
        .executable(name: "blobfs", targets: ["blobfs"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // C libraries, through pkg-config.
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(name: "CLinux"),
        // No pkgConfig: hiredis.pc's only flag is -D_FILE_OFFSET_BITS=64, which SwiftPM refuses
        // with a warning on every build; the header is in the default include path.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // libcurl: the S3 client's HTTP, keep-alive and SigV4 signing (CURLOPT_AWS_SIGV4).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CFuse",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),

        // The vocabulary: digests, descriptors, errors, the blob protocols.
        .target(name: "Distribution", dependencies: ["CCrypto"]),
        // Bytes at driver paths; knows nothing of blobs.
        .target(name: "StorageDriver", dependencies: ["CLinux"]),
        // The S3 driver and its libcurl client: a module of its own so that libcurl and FoundationXML
        // stay out of StorageDriver, which every target links.
        .target(name: "S3", dependencies: ["StorageDriver", "CCurl", "CCrypto"]),
        // The metric set (`BlobfsMetrics`, through swift-metrics) and the counted driver decorator.
        .target(name: "Instrumentation", dependencies: [
            "StorageDriver",
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        // Descriptor caches (in-memory LRU, cachedBlobStatter).
        .target(name: "BlobCache", dependencies: [
            "Distribution", "Instrumentation",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The shared cache conformance suite every provider's tests run (upstream's cache/cachecheck).
        .target(name: "BlobCacheTesting", dependencies: ["BlobCache", "Distribution"]),
        // The Redis descriptor cache, shared with the registry; the only target that links hiredis.
        .target(name: "BlobCacheRedis", dependencies: [
            "CHiredis", "BlobCache", "Distribution", "Instrumentation",
        ]),
        // The registry's storage layer over a driver.
        .target(name: "Storage", dependencies: [
            "Distribution", "StorageDriver", "BlobCache", "Instrumentation",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // `blobfs verify`: re-hashes blobs, checks links; the ledger of verified data file versions.
        .target(name: "Scrubber", dependencies: [
            "Distribution", "StorageDriver", "Storage", "Instrumentation",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The filesystem: inode table, the repo/<name>/blobs/<digest> tree, FUSE operations.
        .target(name: "BlobFS", dependencies: [
            "CFuse", "Distribution", "Storage",
            .product(name: "Logging", package: "swift-log"),
            "Scrubber", "Instrumentation",
        ]),
        // `--metrics-address`: swift-prometheus's registry behind a small SwiftNIO HTTP server.
        .target(name: "MetricsExposition", dependencies: [
            "Instrumentation",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The executable: command line, configuration, logging, signals.
        .executableTarget(name: "blobfs", dependencies: [
            "BlobFS", "Scrubber", "Storage", "StorageDriver", "S3", "BlobCache", "BlobCacheRedis", "Distribution",
            "Instrumentation", "MetricsExposition",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ]),

        // Helpers shared by the test targets: temporary stores, a real docker-registry, HTTP.
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        .testTarget(name: "DistributionTests", dependencies: ["Distribution", "TestSupport"]),
        .testTarget(name: "StorageDriverTests", dependencies: ["StorageDriver", "S3", "TestSupport"]),
        .testTarget(name: "InstrumentationTests", dependencies: [
            "Instrumentation", "StorageDriver", "TestSupport",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "MetricsTestKit", package: "swift-metrics"),
        ]),
        .testTarget(name: "BlobCacheTests", dependencies: ["BlobCache", "BlobCacheTesting", "Distribution"]),
        .testTarget(name: "BlobCacheRedisTests", dependencies: [
            "BlobCacheRedis", "BlobCache", "BlobCacheTesting", "Storage", "StorageDriver", "Distribution", "TestSupport",
        ]),
        // Fixtures shared by the storage-level test targets: a registry over a fresh store on either driver.
        .target(name: "StorageTesting", dependencies: ["Storage", "StorageDriver", "BlobCache", "Distribution", "TestSupport"], path: "Tests/StorageTesting"),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageDriver", "S3", "BlobCache", "StorageTesting", "TestSupport"]),
        .testTarget(name: "ScrubberTests", dependencies: [
            "Scrubber", "Storage", "StorageDriver", "BlobCache", "Distribution", "StorageTesting", "TestSupport",
        ]),
        .testTarget(name: "InteropTests", dependencies: ["Storage", "StorageDriver", "S3", "TestSupport"]),
        // The FUSE operations called directly on an in-memory store: no kernel, no mount.
        .testTarget(
            name: "BlobFSOperationTests", dependencies: ["BlobFS", "Storage", "StorageDriver", "Distribution", "CFuse", "StorageTesting", "TestSupport"]),
        // Real FUSE mounts of the blobfs executable, driven with cp, rsync, tar, getfattr.
        .testTarget(name: "BlobFSTests", dependencies: ["blobfs", "BlobFS", "Storage", "StorageDriver", "S3", "Distribution", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
