import CoreMetrics
import Instrumentation
import Prometheus

/// swift-metrics' factory over swift-prometheus's registry, with each family's help text and the
/// duration histograms' buckets from `BlobfsMetrics`. swift-prometheus's own
/// `PrometheusMetricsFactory` registers every family without help text, and `promtool check
/// metrics` refuses an exposition whose families have none; everything else is what that
/// factory does (the same registry calls, the same handler objects).
public struct DescribedPrometheusFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry
    private let help: [String: String]

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        help = Dictionary(uniqueKeysWithValues: BlobfsMetrics.families.map { ($0.name, $0.help) })
    }

    /// Buckets of a value histogram that is not a duration (blobfs records none today).
    private static let valueBuckets: [Double] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]

    /// The family `label` names, with its help text (the whole name is the descriptor's
    /// `metricName`: the unit is already its suffix).
    private func family(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: family(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: family(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: family(label), labels: dimensions) }
        let buckets = BlobfsMetrics.durationFamilies.contains(label) ? BlobfsMetrics.durationBuckets : Self.valueBuckets
        return registry.makeValueHistogram(descriptor: family(label), labels: dimensions, buckets: buckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: family(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: family(label), labels: dimensions, buckets: BlobfsMetrics.durationBuckets.map { .nanoseconds(Int64($0 * 1e9)) })
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
