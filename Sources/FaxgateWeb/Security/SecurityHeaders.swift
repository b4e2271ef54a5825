import FaxgateCore
import Foundation
import HTTPTypes
import Hummingbird

/// The outermost middleware: turns every error into its response first (so redirects, 403 and 404 get the
/// headers too), then sets the security headers on every response.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let settings: WebSettings

    /// No inline script or style anywhere (pages are server-rendered; enhancements are files under /static/).
    static let contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; "
        + "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        // The scheme (and client) decide HSTS here too: a trusted proxy's X-Forwarded-Proto counts.
        var context = context
        WebSessionMiddleware.resolveClient(request, &context, settings: settings)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            context.logger.error("web request failed: \(error)", metadata: ["path": "\(request.uri.path)"])
            response = Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "internal error\n")))
        }
        Self.apply(to: &response.headers, https: settings.usesTLS || context.isHTTPS)
        return response
    }

    /// The headers every response carries. `https`: add HSTS (only meaningful, and only safe, over HTTPS).
    static func apply(to headers: inout HTTPFields, https: Bool) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        if https { headers[.strictTransportSecurity] = "max-age=31536000" }
        // Pages and documents are personal: never cached unless a route chose otherwise (static files).
        if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
    }
}
