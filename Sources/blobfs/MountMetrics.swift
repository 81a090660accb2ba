import BlobCacheRedis
import BlobFS
import Instrumentation
import Metrics
import MetricsExposition
import Prometheus
import StorageDriver

/// `--metrics-address`: swift-metrics bootstrapped once with swift-prometheus's registry, the
/// process's `BlobfsMetrics` installed, and the storage driver wrapped so that its calls are
/// counted. The HTTP server starts only once the filesystem exists (its gauges read the
/// filesystem's tables), but before the mount: a bad or busy address stops the mount.
struct MountMetrics {
    let metrics: BlobfsMetrics
    let registry: PrometheusCollectorRegistry
    let address: MetricsAddress

    /// Parses the address and turns metrics on; nil when no address was given (the default).
    init?(address text: String?) throws(CommandFailure) {
        guard let text else { return nil }
        do {
            address = try MetricsAddress(parsing: text)
        } catch {
            throw .usage(error.description)
        }
        registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DescribedPrometheusFactory(registry: registry))
        metrics = BlobfsMetrics(version: Blobfs.configuration.version)
        BlobfsMetrics.install(metrics)
    }

    /// `driver`, counted.
    func instrumenting(_ driver: any StorageDriver) -> any StorageDriver {
        InstrumentedDriver(driver, metrics: metrics)
    }

    /// Binds the address and serves `/metrics`; the gauges are read from `fileSystem` (and the
    /// Redis cache, when there is one) at each scrape.
    func serve(_ fileSystem: BlobFileSystem, redis: RedisCacheProvider?) throws(CommandFailure) -> MetricsServer {
        let metrics = self.metrics
        do {
            return try MetricsServer(address: address, registry: registry) {
                let held = fileSystem.held
                metrics.inodes.set(held.inodes)
                metrics.openHandles.set(held.handles)
                metrics.uploadsInProgress.set(held.uploads)
                if let redis { metrics.redisUp.set(redis.isMarkedDown ? 0 : 1) }
            }
        } catch {
            throw CommandFailure(error.description)
        }
    }
}
