import FaxgateCore
import Foundation
import Hummingbird

/// `/metrics` (Prometheus text) and `/health/live`, `/health/ready` (JSON). No session: monitoring systems and
/// load balancers do not log in. Instead only loopback and `web.metrics_allow` may read them; anyone else gets
/// 403 (the figures say how busy the office is, the checks name its servers' trouble).
extension WebServer {
    static func registerOperationsRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
        router.get("/metrics") { request, context -> Response in
            try Self.requireProbeAccess(request, context, env)
            await env.status.refreshGauges()
            return Self.plain(MetricsEndpoint.text(), contentType: MetricsEndpoint.contentType)
        }
        router.get("/health/live") { request, context -> Response in
            try Self.requireProbeAccess(request, context, env)
            // Answering at all is the proof: the process runs and its HTTP server serves.
            return Self.plain("{\"status\":\"live\"}\n", contentType: "application/json")
        }
        router.get("/health/ready") { request, context -> Response in
            try Self.requireProbeAccess(request, context, env)
            let readiness = await env.status.readiness()
            return Self.plain(Self.json(readiness), contentType: "application/json", status: readiness.ready ? .ok : .serviceUnavailable)
        }
    }

    static func requireProbeAccess(_ request: Request, _ context: WebContext, _ env: WebEnvironment) throws {
        let settings = env.configuration().web
        guard ProbeAccess(settings: settings).permits(request, context, settings: settings) else {
            context.logger.notice("refused a monitoring request from an address not in web.metrics_allow",
                                  metadata: ["path": "\(request.uri.path)"])
            throw HTTPError(.forbidden, message: "not allowed from this address (web.metrics_allow)")
        }
    }

    static func plain(_ text: String, contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType, .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// `{"status": "ready"|"not_ready", "checks": [{"name", "ok", "reason"}]}` in the fixed check order.
    static func json(_ readiness: Readiness) -> String {
        struct Body: Encodable { var status: String; var checks: [Readiness.Check] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let body = Body(status: readiness.ready ? "ready" : "not_ready", checks: readiness.checks)
        return ((try? encoder.encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
    }
}
