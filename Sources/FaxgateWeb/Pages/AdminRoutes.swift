import FaxgateCore
import Foundation
import Hummingbird

/// The admin pages: dashboard, journal with call and job details, queue, users, audit trail, logs.
/// Every handler starts with `requireAdmin` (role admin AND a verified second factor; anyone else logged in gets
/// 403), every action is a POST (the session middleware checks its CSRF token) and writes an audit entry before
/// it answers. Actions redirect (303) back to a page that says what happened, except those that show a one-time
/// password: that is shown once in the POST's answer and never stored.
extension WebServer {
    static func registerAdminRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
        let dashboard = AdminDashboardPage(env: env)
        router.get("/admin") { request, context in try await dashboard.show(request, context) }

        let journal = AdminJournalPages(env: env)
        router.get("/admin/journal") { request, context in try await journal.list(request, context) }
        router.get("/admin/calls/:id") { request, context in try await journal.call(request, context) }
        router.get("/admin/calls/:id/documents/:n") { request, context in try await journal.document(request, context) }
        router.post("/admin/calls/:id/resend-mail") { request, context in try await journal.resendMail(request, context) }
        router.get("/admin/jobs/:id") { request, context in try await journal.job(request, context) }

        let queue = AdminQueuePages(env: env)
        router.get("/admin/queue") { request, context in try await queue.list(request, context) }
        router.post("/admin/jobs/:id/cancel") { request, context in try await queue.cancel(request, context) }
        router.post("/admin/jobs/:id/retry") { request, context in try await queue.retryNow(request, context) }
        router.post("/admin/jobs/:id/resend") { request, context in try await queue.resend(request, context) }

        let users = AdminUserPages(env: env)
        router.get("/admin/users") { request, context in try await users.list(request, context) }
        router.post("/admin/users") { request, context in try await users.add(request, context) }
        router.post("/admin/users/:id/:action") { request, context in try await users.act(request, context) }

        let audit = AdminAuditPages(env: env)
        router.get("/admin/audit") { request, context in try await audit.list(request, context) }
        router.get("/admin/logs") { request, context in try await audit.logs(request, context) }
    }
}

/// Helpers the admin pages share.
enum AdminPage {
    static let pageSize = 50

    /// The positive integer path parameter `name`; 404 otherwise.
    static func id(_ context: WebContext, _ name: String = "id") throws -> Int64 {
        guard let text = context.parameters.get(name), let id = Int64(text), id > 0 else { throw HTTPError(.notFound) }
        return id
    }

    /// The query's value, trimmed, at most 200 characters; nil when empty.
    static func query(_ request: Request, _ name: String) -> String? {
        // Parsed as a form (a GET form writes a space as "+", which the URI's own parameters keep).
        guard let value = formFields(request.uri.query ?? "")[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
            return nil
        }
        return String(value.prefix(200))
    }

    static func t(_ key: String, _ context: WebContext) -> String { Strings.text(key, context.language) }

    static func time(_ date: Date?, _ language: String) -> String { PageFormat.time(date, language, seconds: true) }

    static func duration(_ seconds: Double?) -> String { PageFormat.duration(seconds) }

    /// A `yyyy-MM-dd` date (local midnight); nil when not a date.
    static func day(_ text: String?) -> Date? {
        guard let text, text.count == 10 else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd"
        return f.date(from: text)
    }

    static func bytes(_ n: Int64?) -> String {
        guard let n else { return "–" }
        return ByteCountFormatter.string(fromByteCount: n, countStyle: .file)
    }

    /// The fields of the POST's urlencoded form (the session middleware collected the body already).
    static func form(_ request: Request) async throws -> [String: String] {
        try await postedFields(request)
    }

    /// A query string from `pairs`, values percent-encoded, empty values left out.
    static func queryString(_ pairs: [(String, String?)]) -> String {
        pairs.compactMap { key, value in
            guard let value, !value.isEmpty else { return nil }
            return key + "=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }.joined(separator: "&")
    }

    /// A message key the page was redirected with (`?done=` / `?error=`), only when it is one of `allowed`: the
    /// page never prints text taken from the URL.
    static func flash(_ request: Request, _ context: WebContext, allowed: Set<String>) -> (notice: String, error: String) {
        let done = query(request, "done").flatMap { allowed.contains($0) ? t("admin_done_" + $0, context) : nil } ?? ""
        let error = query(request, "error").flatMap { allowed.contains($0) ? t("admin_error_" + $0, context) : nil } ?? ""
        return (done, error)
    }

    static func callState(_ state: CallRecord.State, _ context: WebContext) -> String { t("admin_callstate_" + state.rawValue, context) }
    static func jobState(_ state: FaxJob.State, _ context: WebContext) -> String { t("admin_jobstate_" + state.rawValue, context) }
    static func outcome(_ outcome: CallRecord.Outcome?, _ context: WebContext) -> String {
        outcome.map { t("admin_outcome_" + $0.rawValue, context) } ?? "–"
    }
    static func kind(_ kind: CallRecord.Kind, _ context: WebContext) -> String { t("admin_kind_" + kind.rawValue, context) }

    /// A number as the journal shows it: international when its type tells, never a withheld one.
    static func number(_ n: PartyNumber?, _ format: PartyNumberFormat, _ context: WebContext) -> String {
        guard let n else { return "–" }
        switch n.presentation {
        case .restricted: return t("admin_withheld", context)
        case .unavailable: return t("admin_unavailable", context)
        case .allowed: break
        }
        let shown = format.international(n) ?? PartyNumberFormat.cleaned(n.digits)
        return shown.isEmpty ? "–" : shown
    }
}
