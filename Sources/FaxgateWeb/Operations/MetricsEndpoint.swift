import FaxgateCore
import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import Prometheus

/// The process's Prometheus registry behind swift-metrics. `faxgate serve` calls `bootstrap()` once at start;
/// libraries never do (MetricsSystem may be bootstrapped only once per process, and the CLI wants no metrics).
public enum MetricsEndpoint {
    public static let registry = PrometheusCollectorRegistry()

    /// Swift statics initialise exactly once, thread-safely: a second call is a no-op, not a crash.
    private static let bootstrapOnce: Void = {
        var factory = PrometheusMetricsFactory(registry: registry)
        let slow: [Duration] = [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120)]
        factory.durationHistogramBuckets[GatewayMetrics.Name.render] = slow
        factory.durationHistogramBuckets[GatewayMetrics.Name.intakeLatency] = slow
        factory.durationHistogramBuckets[GatewayMetrics.Name.outboxDelivery] =
            [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(60), .seconds(300),
             .seconds(1800), .seconds(3600), .seconds(14400), .seconds(86400)]
        MetricsSystem.bootstrap(factory)
    }()

    public static func bootstrap() { _ = bootstrapOnce }

    /// The scrape body, Prometheus text format 0.0.4.
    public static func text() -> String { registry.emitToString() }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// Who may read `/metrics` and `/health/*` without logging in: loopback, and `web.metrics_allow`.
/// The client address is the one the session middleware resolved (the peer, or what a trusted proxy says).
/// A request carrying forwarding headers from a peer that is not a trusted proxy is judged by nothing but
/// `metrics_allow`: a reverse proxy on the same host would otherwise make every outside client "loopback".
public struct ProbeAccess: Sendable {
    let allow: AddressAllowList
    public init(settings: WebSettings) { allow = AddressAllowList(settings.metricsAllow) }

    public func permits(clientAddress: String, peerAddress: String, forwarded: Bool, trustedProxy: Bool) -> Bool {
        if allow.contains(clientAddress) { return true }
        if forwarded && !trustedProxy { return false }
        return AddressAllowList.isLoopback(clientAddress)
    }

    public func permits(_ request: Request, _ context: WebContext, settings: WebSettings) -> Bool {
        let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!] != nil || request.headers[HTTPField.Name("Forwarded")!] != nil
        let plainPeer = context.peerAddress.hasPrefix("::ffff:") ? String(context.peerAddress.dropFirst(7)) : context.peerAddress
        let trusted = settings.trustedProxies.contains { $0 == context.peerAddress || $0 == plainPeer }
        return permits(clientAddress: context.clientAddress, peerAddress: context.peerAddress, forwarded: forwarded, trustedProxy: trusted)
    }
}
