import FaxgateCore
import Foundation
import Hummingbird

/// /admin: the gateway at a glance, from `StatusOperations.dashboard()` (taken now from the running parts).
struct AdminDashboardPage: Sendable {
    let env: WebEnvironment

    func show(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let s = await env.status.dashboard()
        let lang = context.language
        let t = { (key: String) in AdminPage.t(key, context) }
        let lines: [[String: Any]] = s.transport.lines.map { l in
            ["controller": l.controller, "registered": l.registered, "state": t(l.registered ? "admin_dash_registered" : "admin_dash_unregistered"),
             "channels": "\(l.channelsInUse) / \(l.channelsTotal)"]
        }
        let queue: [[String: Any]] = s.queue.map { ["state": AdminPage.jobState($0.state, context), "count": $0.count] }
        let errors: [[String: Any]] = s.lastErrors.map { f in
            switch f.item {
            case .call(let id, let kind, let outcome, let cause):
                return ["time": AdminPage.time(f.at, lang), "link": "/admin/calls/\(id)", "what": "\(AdminPage.kind(kind, context)) \(id)",
                        "why": [AdminPage.outcome(outcome, context), cause?.rawValue].compactMap { $0 }.joined(separator: " · ")]
            case .job(let id, let state, let cause):
                return ["time": AdminPage.time(f.at, lang), "link": "/admin/jobs/\(id)", "what": "\(t("admin_journal_job")) #\(id)",
                        "why": [AdminPage.jobState(state, context), cause?.rawValue].compactMap { $0 }.joined(separator: " · ")]
            case .mail(let callID, let jobID):
                let link = callID.map { "/admin/calls/\($0)" } ?? jobID.map { "/admin/jobs/\($0)" } ?? "/admin/journal"
                return ["time": AdminPage.time(f.at, lang), "link": link,
                        "what": callID.map { "\(t("admin_journal_call")) \($0)" } ?? jobID.map { "\(t("admin_journal_job")) #\($0)" } ?? "–",
                        "why": t("admin_dash_mail_failed")]
            }
        }
        let intake: [[String: Any]] = s.intake.map { m in
            ["name": m.name, "connected": m.connected, "state": t(m.connected ? "admin_dash_connected" : "admin_dash_disconnected"),
             "lastPoll": AdminPage.time(m.lastPollAt, lang), "lastError": m.lastError ?? "", "lastErrorAt": AdminPage.time(m.lastErrorAt, lang)]
        }
        let d = s.disk
        return PageRenderer.shared.page("admin-dashboard", [
            "takenAt": AdminPage.time(s.takenAt, lang),
            "transportName": s.transport.name,
            "registered": s.transport.registered,
            "transportState": t(s.transport.registered ? "admin_dash_registered" : "admin_dash_unregistered"),
            "since": AdminPage.time(s.transport.since, lang),
            "transportError": s.transport.lastError ?? "",
            "channels": "\(s.transport.channelsInUse) / \(s.transport.channelsTotal)",
            "lines": lines, "noLines": lines.isEmpty,
            "queue": queue,
            "faxIn": s.callsToday.faxIn, "voiceIn": s.callsToday.voiceIn, "failedIn": s.callsToday.failedIn,
            "faxOut": s.callsToday.faxOut, "failedOut": s.callsToday.failedOut,
            "errors": errors, "noErrors": errors.isEmpty,
            "diskPath": d.path, "spoolBytes": AdminPage.bytes(d.spoolBytes), "freeBytes": AdminPage.bytes(d.freeBytes),
            "totalBytes": AdminPage.bytes(d.totalBytes), "minFree": AdminPage.bytes(d.minFreeBytes), "diskLow": d.belowMinimum,
            "intake": intake, "noIntake": intake.isEmpty,
            "outboxCount": s.outbox.count, "outboxFailed": s.outbox.failed,
            "outboxOldest": AdminPage.time(s.outbox.oldestQueuedAt, lang),
            "outboxFailingSince": s.outbox.failingSince.map { AdminPage.time($0, lang) } ?? "",
            "outboxError": s.outbox.lastError ?? "",
            "outboxOverBudget": s.outbox.overBudget(),
        ], request: request, context: context)
    }
}
