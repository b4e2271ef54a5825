import FaxgateCore
import Foundation
import Hummingbird

/// /admin/queue: every job not yet final and the latest final ones, with cancel, retry now and resend. The pages
/// never write a job row: cancel and resend go through `JobOperations` (the running queue, the rules of
/// `faxgate cancel`/`resend`), retry now through `AdminOperations` (an expected-state update, so the dialler wins a race).
struct AdminQueuePages: Sendable {
    let env: WebEnvironment

    static let flashes: Set<String> = [
        "canceled", "on_the_line", "finished", "retried", "not_waiting", "resent", "not_final", "document_gone", "not_running",
    ]

    /// The actions a job offers in its state.
    static func actions(_ job: FaxJob, back: String) -> [String: Any] {
        [
            "id": job.id ?? 0, "back": back,
            "cancel": job.state == .ready || job.state == .deferred,
            "retry": job.state == .deferred,
            "resend": job.state.isFinal,
        ]
    }

    func list(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let waiting = try await env.storage.jobs(in: [.ready, .active, .deferred]).sorted { ($0.id ?? 0) > ($1.id ?? 0) }
        let recent = try await env.storage.searchJobs(JobQuery(states: [.done, .failed, .canceled], limit: AdminPage.pageSize))
        let flash = AdminPage.flash(request, context, allowed: Self.flashes)
        func row(_ j: FaxJob) -> [String: Any] {
            [
                "id": j.id ?? 0, "time": AdminPage.time(j.createdAt, context.language),
                "next": j.state.isFinal ? AdminPage.time(j.endedAt, context.language) : AdminPage.time(max(j.nextAttemptAt, j.sendAt), context.language),
                "number": j.number, "sender": j.sender, "extension": j.extensionName,
                "pages": "\(j.pagesSent)/\(j.pages)", "tries": j.tries, "state": AdminPage.jobState(j.state, context),
                "result": [j.lastCause, j.lastText].compactMap { $0 }.joined(separator: ": "),
                "actions": Self.actions(j, back: "queue"),
            ]
        }
        return PageRenderer.shared.page("admin-queue", [
            "waiting": waiting.map(row), "noWaiting": waiting.isEmpty,
            "recent": recent.map(row), "noRecent": recent.isEmpty,
            "notice": flash.notice, "error": flash.error,
        ], request: request, context: context)
    }

    /// Back to where the form was (the queue or the job's page), with what happened.
    private func back(_ form: [String: String], id: Int64, _ param: String, _ key: String) -> WebRedirect {
        let base = form["back"] == "job" ? "/admin/jobs/\(id)" : "/admin/queue"
        return WebRedirect(to: "\(base)?\(param)=\(key)")
    }

    func cancel(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        let id = try AdminPage.id(context)
        guard let actor = context.actor else { throw HTTPError(.forbidden) }
        let form = try await AdminPage.form(request)
        // JobOperations writes the audit entry (job.cancel) with the actor and client address.
        let (param, key): (String, String)
        switch try await env.jobs.cancel(jobID: id, by: actor) {
        case .canceled: (param, key) = ("done", "canceled")
        case .notFound: throw HTTPError(.notFound)
        case .onTheLine: (param, key) = ("error", "on_the_line")
        case .finished: (param, key) = ("error", "finished")
        }
        throw back(form, id: id, param, key)
    }

    func retryNow(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        let id = try AdminPage.id(context)
        guard let actor = context.actor else { throw HTTPError(.forbidden) }
        let form = try await AdminPage.form(request)
        let (param, key, detail): (String, String, String)
        do {
            switch try await env.admin.retryNow(jobID: id, by: actor) {
            case .moved: (param, key, detail) = ("done", "retried", "next try moved to now")
            case .notFound: throw HTTPError(.notFound)
            case .notWaiting(let state): (param, key, detail) = ("error", "not_waiting", "refused: the job is \(state.rawValue)")
            }
        } catch is UnavailableAdminOperations.NotRunning {
            (param, key, detail) = ("error", "not_running", "refused: the gateway is not running")
        }
        try await audit(env, context, action: "job.retry_now", target: "job \(id)", detail: detail)
        throw back(form, id: id, param, key)
    }

    func resend(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        let id = try AdminPage.id(context)
        guard let actor = context.actor else { throw HTTPError(.forbidden) }
        let form = try await AdminPage.form(request)
        // JobOperations writes the audit entry (job.resend) with the actor, client address and outcome.
        switch try await env.jobs.resend(jobID: id, by: actor) {
        case .queued(let newID):
            throw WebRedirect(to: "/admin/jobs/\(newID)?done=resent")
        case .notFound: throw HTTPError(.notFound)
        case .notFinished:
            throw back(form, id: id, "error", "not_final")
        case .documentGone:
            throw back(form, id: id, "error", "document_gone")
        case .refused(let reason):
            // The reason is typed: shown in the reader's language on a page of its own (no text through the URL).
            return PageRenderer.shared.page("admin-refused", [
                "message": reason.text(context.language), "back": form["back"] == "job" ? "/admin/jobs/\(id)" : "/admin/queue",
            ], request: request, context: context, status: .unprocessableContent)
        }
    }
}
