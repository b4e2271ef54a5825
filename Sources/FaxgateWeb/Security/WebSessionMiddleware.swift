import FaxgateCore
import Foundation
import HTTPTypes
import Hummingbird
import MultipartKit

/// Per request, in this order: upload limit, client address (trusted proxies), session (idle and absolute
/// timeout), CSRF token, language; then refuses an unsafe method (POST, …) whose token is not the session's
/// (or, before login, the pre-session cookie's) with 403, before any handler runs.
struct WebSessionMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let environment: WebEnvironment
    let settings: WebSettings

    /// lastSeenAt is written at most this often, not on every request.
    static let touchInterval: TimeInterval = 15

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        var context = context
        var request = request
        context.uploadLimit = max(1, settings.maxUploadMB) * 1024 * 1024
        if let length = request.headers[.contentLength].flatMap(Int.init), length > context.uploadLimit {
            throw HTTPError(.contentTooLarge)
        }
        Self.resolveClient(request, &context, settings: settings)

        var cookies: [Cookie] = []
        if let id = request.cookies[WebCookies.session]?.value, !id.isEmpty {
            if try await !loadSession(id: id, into: &context) {
                cookies.append(WebCookies.make(WebCookies.session, "", settings: settings, https: context.isHTTPS, maxAge: 0))
            }
        }
        if let session = context.session {
            context.csrfToken = session.csrfToken
        } else if let pre = request.cookies[WebCookies.preSession]?.value, pre.count >= 32 {
            context.csrfToken = pre
        } else {
            context.csrfToken = WebSessions.randomToken()
            cookies.append(WebCookies.make(WebCookies.preSession, context.csrfToken, settings: settings, https: context.isHTTPS))
        }
        // The stored choice counts once logged in: the switch stores it only then, so on the password and
        // second-factor pages before that the switch's cookie must win, or the switch does nothing there.
        context.language = Self.language(request, user: context.authState == .complete ? context.user : nil)

        var response: Response
        do {
            if ![.get, .head, .options].contains(request.method) {
                let sent = try await Self.submittedToken(&request, limit: context.uploadLimit)
                let expected = context.session?.csrfToken ?? request.cookies[WebCookies.preSession]?.value ?? ""
                guard let sent, WebSessions.constantTimeEqual(sent, expected) else {
                    context.logger.notice("refused a \(request.method) without the session's CSRF token", metadata: ["path": "\(request.uri.path)"])
                    throw CSRFRefused()
                }
            }
            response = try await next(request, context)
        } catch let error as any HTTPResponseError where error.status.code >= 400 && Self.wantsHTML(request) {
            response = Self.errorPage(error, request: request, context: context)
        }
        for cookie in cookies where !response.headers[values: .setCookie].contains(where: { $0.hasPrefix(cookie.name + "=") }) {
            response.setCookie(cookie)
        }
        return response
    }

    /// A browser asking for a page (not a script or a client that wants JSON).
    static func wantsHTML(_ request: Request) -> Bool {
        (request.headers[.accept] ?? "").contains("text/html")
    }

    /// An error as a page in the user's language, inside the layout (so the way on is visible).
    static func errorPage(_ error: any HTTPResponseError, request: Request, context: WebContext) -> Response {
        let key: String = switch error.status.code {
        case 400: "common.error.bad_request"
        case 403: error is CSRFRefused ? "common.error.csrf" : "common.error.forbidden"
        case 404: "common.error.not_found"
        case 413: "common.error.too_large"
        case 500...: "common.error.internal"
        default: "common.error.other"
        }
        let heading = Strings.text("common.error.title", context.language).replacingOccurrences(of: "%@", with: "\(error.status.code)")
        var response = PageRenderer.shared.page("error", ["heading": heading, "message": Strings.text(key, context.language)],
                                                request: request, context: context, status: error.status)
        if let original = error as? HTTPError { for field in original.headers { response.headers.append(field) } }
        return response
    }

    /// Finds the session of the cookie `id`; false (and the row deleted) when it is unknown, expired or its user
    /// is gone or disabled.
    func loadSession(id: String, into context: inout WebContext) async throws -> Bool {
        let storage = environment.storage
        guard let session = try await storage.session(idHash: WebSessions.hash(id)) else { return false }
        let now = Date()
        let idle = now.timeIntervalSince(session.lastSeenAt) > Double(settings.sessionIdleMinutes) * 60
        let old = now.timeIntervalSince(session.createdAt) > Double(settings.sessionAbsoluteHours) * 3600
        guard !idle, !old, let user = try await storage.user(id: session.userID), !user.disabled else {
            try await storage.deleteSession(idHash: session.idHash)
            return false
        }
        var current = session
        if now.timeIntervalSince(session.lastSeenAt) > Self.touchInterval {
            current.lastSeenAt = now
            try await storage.updateSession(current)
        }
        context.session = current
        context.user = user
        return true
    }

    /// The client address and scheme: the peer, unless the peer is a trusted proxy; then the right-most
    /// X-Forwarded-For entry that is not itself a trusted proxy, and X-Forwarded-Proto.
    static func resolveClient(_ request: Request, _ context: inout WebContext, settings: WebSettings) {
        context.clientAddress = context.peerAddress
        context.isHTTPS = settings.usesTLS
        guard isTrustedProxy(context.peerAddress, settings.trustedProxies) else { return }
        let hops = request.headers[values: HTTPField.Name("X-Forwarded-For")!]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        if let client = hops.reversed().first(where: { !isTrustedProxy($0, settings.trustedProxies) }) ?? hops.first,
           client.count <= 64, client.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) {
            context.clientAddress = client
        } else if !hops.isEmpty {
            // Forwarded for something that is not an address: the client is unknown, not the proxy (a proxy on
            // loopback would otherwise make the request count as local, e.g. for /metrics).
            context.clientAddress = "-"
        }
        if let proto = request.headers[values: HTTPField.Name("X-Forwarded-Proto")!].last?
            .split(separator: ",").last?.trimmingCharacters(in: .whitespaces).lowercased() {
            context.isHTTPS = settings.usesTLS || proto == "https"
        }
    }

    /// Whether `address` is one of `web.trusted_proxies` (exact addresses; `::ffff:` mapped IPv4 counts as IPv4).
    static func isTrustedProxy(_ address: String, _ proxies: [String]) -> Bool {
        let plain = address.hasPrefix("::ffff:") ? String(address.dropFirst(7)) : address
        return proxies.contains { $0 == address || $0 == plain }
    }

    /// The page language: the user's stored choice, else the `lang` cookie (the switch), else the browser's
    /// Accept-Language (first of de/en by weight), else English.
    static func language(_ request: Request, user: WebUser?) -> String {
        if let stored = user?.language, ["de", "en"].contains(stored) { return stored }
        if let cookie = request.cookies[WebCookies.language]?.value, ["de", "en"].contains(cookie) { return cookie }
        return acceptLanguage(request.headers[.acceptLanguage] ?? "")
    }

    /// "de" or "en" from an Accept-Language header; "en" when it names neither.
    static func acceptLanguage(_ header: String) -> String {
        var best: (lang: String, q: Double)?
        for (index, item) in header.split(separator: ",").enumerated() {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = parts.first?.lowercased() else { continue }
            let primary = String(tag.split(separator: "-").first ?? "")
            guard primary == "de" || primary == "en" else { continue }
            var q = 1.0
            for p in parts.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)) ?? 0 }
            // Earlier entries win ties (the browser's order).
            let weighted = q - Double(index) * 1e-6
            if q > 0, best == nil || weighted > best!.q { best = (primary, weighted) }
        }
        return best?.lang ?? "en"
    }

    /// The CSRF token a request carries: header `X-CSRF-Token`, or the form field `csrf` of an urlencoded or
    /// multipart body. The body is read (up to the upload limit) and put back for the handler.
    static func submittedToken(_ request: inout Request, limit: Int) async throws -> String? {
        if let header = request.headers[HTTPField.Name("X-CSRF-Token")!], !header.isEmpty { return header }
        let type = (request.headers[.contentType] ?? "").lowercased()
        if type.hasPrefix("application/x-www-form-urlencoded") {
            let body = try await request.collectBody(upTo: limit)
            return formFields(String(buffer: body))["csrf"]
        }
        if type.hasPrefix("multipart/form-data"), let boundary = boundary(request.headers[.contentType] ?? "") {
            let body = try await request.collectBody(upTo: limit)
            struct Field: Decodable { var csrf: String? }
            return (try? FormDataDecoder().decode(Field.self, from: body, boundary: boundary))?.csrf
        }
        return nil
    }

    /// The boundary parameter of a multipart content type.
    static func boundary(_ contentType: String) -> String? {
        for param in contentType.split(separator: ";").dropFirst() {
            let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                let value = kv[1].hasPrefix("\"") && kv[1].hasSuffix("\"") && kv[1].count >= 2 ? String(kv[1].dropFirst().dropLast()) : kv[1]
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }
}

/// A POST without the session's token: 403.
struct CSRFRefused: HTTPResponseError {
    var status: HTTPResponse.Status { .forbidden }
    func response(from request: Request, context: some RequestContext) throws -> Response {
        try HTTPError(.forbidden, message: "missing or wrong CSRF token").response(from: request, context: context)
    }
}

/// Every field of an `application/x-www-form-urlencoded` body, with all values of repeated names in order
/// (checkbox groups). The one decoder of form bodies and GET queries on the pages.
public func formValues(_ body: String) -> [String: [String]] {
    var out: [String: [String]] = [:]
    for pair in body.split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ s: Substring) -> String { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
        out[decode(kv[0]), default: []].append(kv.count > 1 ? decode(kv[1]) : "")
    }
    return out
}

/// The fields of an `application/x-www-form-urlencoded` body (the first value of each name).
public func formFields(_ body: String) -> [String: String] {
    formValues(body).compactMapValues(\.first)
}

/// The urlencoded form of a POST, all values per name. The session middleware collected the body already for its
/// CSRF check, so this reads the buffer it left.
func postedForm(_ request: Request, upTo limit: Int = 64 * 1024) async throws -> [String: [String]] {
    formValues(String(buffer: try await request.body.collect(upTo: limit)))
}

/// The urlencoded form of a POST, the first value per name.
func postedFields(_ request: Request, upTo limit: Int = 64 * 1024) async throws -> [String: String] {
    formFields(String(buffer: try await request.body.collect(upTo: limit)))
}
