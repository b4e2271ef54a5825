import FaxgateCore
import Foundation
import Hummingbird

/// /admin/audit: the audit trail, newest first, filtered by actor and action (a prefix such as `job.`), keyset
/// paged. /admin/logs: one day's redacted log, searched by call or job id or any words, bounded.
struct AdminAuditPages: Sendable {
    let env: WebEnvironment
    static let logLimit = 500

    func list(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let actor = AdminPage.query(request, "actor")
        let action = AdminPage.query(request, "action")
        let before = AdminPage.query(request, "before").flatMap { Int64($0) }
        let size = AdminPage.pageSize
        var entries = try await env.storage.auditEntries(limit: size + 1, beforeID: before, actor: actor, action: action)
        let more = entries.count > size
        entries = Array(entries.prefix(size))
        let rows: [[String: Any]] = entries.map { e in
            ["time": AdminPage.time(e.at, context.language), "actor": e.actor, "client": e.clientAddress, "action": e.action,
             "target": e.target, "detail": e.detail]
        }
        let next = more ? "/admin/audit?" + AdminPage.queryString([("actor", actor), ("action", action), ("before", entries.last?.id.map(String.init))]) : ""
        return PageRenderer.shared.page("admin-audit", [
            "rows": rows, "empty": rows.isEmpty, "actor": actor ?? "", "action": action ?? "", "next": next,
        ], request: request, context: context)
    }

    func logs(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let days = await env.admin.logDays()
        // Only a day that has a file is read; anything else in the URL selects the newest day.
        let wanted = AdminPage.query(request, "day")
        let day = wanted.flatMap { days.contains($0) ? $0 : nil } ?? days.first
        let search = AdminPage.query(request, "q") ?? ""
        var excerpt: LogExcerpt?
        var failed = false
        if let day {
            do { excerpt = try await env.admin.logLines(day: day, search: search, limit: Self.logLimit) } catch { failed = true }
        }
        return PageRenderer.shared.page("admin-logs", [
            "days": days.map { ["day": $0, "selected": $0 == day] as [String: Any] },
            "noDays": days.isEmpty,
            "q": search,
            "lines": excerpt?.lines ?? [],
            "noLines": excerpt.map { $0.lines.isEmpty } ?? false,
            "omitted": (excerpt?.omitted ?? 0) > 0 ? String(format: AdminPage.t("admin_logs_omitted", context), excerpt?.omitted ?? 0) : "",
            "scanned": excerpt.map { String(format: AdminPage.t("admin_logs_scanned", context), $0.lines.count, $0.scanned) } ?? "",
            "error": failed ? AdminPage.t("admin_logs_unreadable", context) : "",
        ], request: request, context: context)
    }
}
