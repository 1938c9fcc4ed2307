import Hummingbird
import NIOCore
import Prometheus
import SandhiRuntime

/// `GET /metrics`: the registry in Prometheus's text format, brought up to date first.
struct MetricsEndpoint: Sendable {
    let registry: PrometheusCollectorRegistry
    let metrics: ServiceMetrics

    /// A registry and the node's metrics in it, with latency buckets from 100 µs to 10 s (the
    /// factory's default starts at 5 ms, above most of what a commit takes here).
    init(node: SandhiNode, hub: EventHub) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        metrics = ServiceMetrics(node: node, hub: hub, factory: factory)
    }

    func response() -> Response {
        metrics.refresh()
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
