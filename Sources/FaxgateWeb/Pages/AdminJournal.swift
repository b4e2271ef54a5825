import FaxgateCore
import Foundation
import Hummingbird

/// /admin/journal: every call (both directions, fax and voice) and every outgoing job, newest first, with filters
/// and keyset paging over both lists at once (`bc` = before call id, `bj` = before job id): each page reads at most
/// one page plus one row from each list through the storage's indexed queries, however long the journal is.
/// /admin/calls/<id> and /admin/jobs/<id>: one item with its history; "mail again" for a received fax.
struct AdminJournalPages: Sendable {
    let env: WebEnvironment

    /// The journal's filters as the form sends them.
    struct Filter {
        var direction: String?   // "in" | "out"
        var kind: CallRecord.Kind?
        var callState: CallRecord.State?
        var jobState: FaxJob.State?
        var extensionName: String?
        var text: String?
        var fromText: String?
        var toText: String?
        var from: Date?
        var to: Date?

        init(_ request: Request) {
            direction = AdminPage.query(request, "dir").flatMap { ["in", "out"].contains($0) ? $0 : nil }
            kind = AdminPage.query(request, "kind").flatMap(CallRecord.Kind.init(rawValue:))
            let state = AdminPage.query(request, "state")
            callState = state.flatMap(CallRecord.State.init(rawValue:))
            jobState = state.flatMap(FaxJob.State.init(rawValue:))
            extensionName = AdminPage.query(request, "ext")
            text = AdminPage.query(request, "q")
            fromText = AdminPage.query(request, "from")
            toText = AdminPage.query(request, "to")
            from = AdminPage.day(fromText)
            // The "to" day is included: the range ends at the next midnight.
            to = AdminPage.day(toText).map { $0.addingTimeInterval(86_400) }
        }

        /// Calls are listed unless the state names a job state.
        var includesCalls: Bool { jobState == nil }
        /// Jobs are outgoing faxes: listed unless the filter asks for incoming, voice or a call state.
        var includesJobs: Bool { direction != "in" && kind != .voice && callState == nil }

        var callQuery: CallQuery {
            CallQuery(extensions: extensionName.map { [$0] },
                      direction: direction.map { $0 == "in" ? .incoming : .outgoing },
                      kinds: kind.map { [$0] }, states: callState.map { [$0] }, text: text, from: from, to: to)
        }

        var jobQuery: JobQuery {
            JobQuery(extensions: extensionName.map { [$0] }, states: jobState.map { [$0] }, text: text, from: from, to: to)
        }

        var pairs: [(String, String?)] {
            [("dir", direction), ("kind", kind?.rawValue), ("state", callState?.rawValue ?? jobState?.rawValue),
             ("ext", extensionName), ("q", text), ("from", fromText), ("to", toText)]
        }
    }

    func list(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let filter = Filter(request)
        let size = AdminPage.pageSize
        let beforeCall = AdminPage.query(request, "bc").flatMap { Int64($0) }
        let beforeJob = AdminPage.query(request, "bj").flatMap { Int64($0) }
        var calls: [CallRecord] = [], jobs: [FaxJob] = []
        var callCount: Int?
        if filter.includesCalls && beforeCall != 0 {
            var q = filter.callQuery
            q.beforeID = beforeCall
            q.limit = size + 1
            calls = try await env.storage.searchCalls(q)
            if beforeCall == nil && beforeJob == nil { callCount = try await env.storage.countCalls(filter.callQuery) }
        }
        if filter.includesJobs && beforeJob != 0 {
            var q = filter.jobQuery
            q.beforeID = beforeJob
            q.limit = size + 1
            jobs = try await env.storage.searchJobs(q)
        }
        // Merge the two newest-first lists by time; what is left over starts the next page.
        enum Item { case call(CallRecord), job(FaxJob) }
        var items: [Item] = []
        var ci = 0, ji = 0
        while items.count < size && (ci < calls.count || ji < jobs.count) {
            if ji >= jobs.count || (ci < calls.count && calls[ci].startedAt >= jobs[ji].createdAt) {
                items.append(.call(calls[ci])); ci += 1
            } else {
                items.append(.job(jobs[ji])); ji += 1
            }
        }
        let more = ci < calls.count || ji < jobs.count
        let format = PartyNumberFormat(line: env.configuration().outgoing.line)
        let rows: [[String: Any]] = items.map { item in
            switch item {
            case .call(let c):
                let incoming = c.direction == .incoming
                return [
                    "link": "/admin/calls/\(c.id ?? 0)", "id": "\(c.id ?? 0)", "time": AdminPage.time(c.startedAt, context.language),
                    "direction": AdminPage.t(incoming ? "admin_dir_in" : "admin_dir_out", context),
                    "kind": AdminPage.kind(c.kind, context),
                    "remote": AdminPage.number(incoming ? c.caller : c.called, format, context),
                    "extension": c.extensionName ?? "–", "pages": c.pages.map(String.init) ?? "–",
                    "state": AdminPage.callState(c.state, context), "result": AdminPage.outcome(c.outcome, context),
                    "bad": c.outcome == .failed || c.outcome == .partial || c.state == .mailFailed,
                ]
            case .job(let j):
                return [
                    "link": "/admin/jobs/\(j.id ?? 0)", "id": "#\(j.id ?? 0)", "time": AdminPage.time(j.createdAt, context.language),
                    "direction": AdminPage.t("admin_dir_out", context), "kind": AdminPage.kind(.fax, context),
                    "remote": j.number, "extension": j.extensionName, "pages": "\(j.pagesSent)/\(j.pages)",
                    "state": AdminPage.jobState(j.state, context), "result": j.lastCause ?? "–",
                    "bad": j.state == .failed,
                ]
            }
        }
        var nextPairs = filter.pairs
        if more {
            // 0 = that list is exhausted: the next page does not ask it again.
            let lastCall = items.reduce(Int64?.none) { if case .call(let c) = $1 { return c.id } else { return $0 } }
            let lastJob = items.reduce(Int64?.none) { if case .job(let j) = $1 { return j.id } else { return $0 } }
            let callsLeft = ci < calls.count, jobsLeft = ji < jobs.count
            nextPairs.append(("bc", callsLeft ? "\(lastCall ?? beforeCall ?? Int64.max)" : (filter.includesCalls ? "0" : nil)))
            nextPairs.append(("bj", jobsLeft ? "\(lastJob ?? beforeJob ?? Int64.max)" : (filter.includesJobs ? "0" : nil)))
        }
        let extensions = env.configuration().extensions.map(\.name)
        let stateOptions: [[String: Any]] =
            CallRecord.State.allCases.map { ["value": $0.rawValue, "label": AdminPage.t("admin_journal_call", context) + ": " + AdminPage.callState($0, context),
                                             "selected": filter.callState == $0] }
            + FaxJob.State.allCases.map { ["value": $0.rawValue, "label": AdminPage.t("admin_journal_job", context) + ": " + AdminPage.jobState($0, context),
                                           "selected": filter.jobState == $0] }
        return PageRenderer.shared.page("admin-journal", [
            "rows": rows, "empty": rows.isEmpty,
            "count": callCount.map { String(format: AdminPage.t("admin_journal_count", context), $0) } ?? "",
            "q": filter.text ?? "", "from": filter.fromText ?? "", "to": filter.toText ?? "",
            "dirIn": filter.direction == "in", "dirOut": filter.direction == "out",
            "kindFax": filter.kind == .fax, "kindVoice": filter.kind == .voice,
            "states": stateOptions,
            "extensions": extensions.map { ["name": $0, "selected": $0 == filter.extensionName] as [String: Any] },
            "next": more ? "/admin/journal?" + AdminPage.queryString(nextPairs) : "",
        ], request: request, context: context)
    }

    static let callFlashes: Set<String> = ["mail_resent", "not_fax", "not_finished", "document_gone", "extension_gone", "not_running"]

    func call(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let id = try AdminPage.id(context)
        guard let call = try await env.storage.call(id: id) else { throw HTTPError(.notFound) }
        let config = env.configuration()
        let format = PartyNumberFormat(line: config.outgoing.line)
        let events = try await env.storage.events(callID: id)
        let documents = try await env.storage.documents(callID: id)
        let flash = AdminPage.flash(request, context, allowed: Self.callFlashes)
        let currentRecipients = config.extensions.first { $0.name == call.extensionName }?.email ?? []
        let canResend = call.direction == .incoming && call.kind == .fax && (call.state == .mailed || call.state == .mailFailed)
        let facts: [(String, String)] = [
            ("admin_col_time", AdminPage.time(call.startedAt, context.language)),
            ("admin_col_ended", AdminPage.time(call.endedAt, context.language)),
            ("admin_col_duration", AdminPage.duration(call.durationSeconds)),
            ("admin_col_direction", AdminPage.t(call.direction == .incoming ? "admin_dir_in" : "admin_dir_out", context)),
            ("admin_col_kind", AdminPage.kind(call.kind, context)),
            ("admin_col_caller", AdminPage.number(call.caller, format, context)),
            ("admin_col_called", AdminPage.number(call.called, format, context)),
            ("admin_col_extension", call.extensionName ?? "–"),
            // Sent by the remote machine: escaped by the template, cleaned of control characters here.
            ("admin_col_station", call.remoteStationID.map(PartyNumberFormat.cleaned) ?? "–"),
            ("admin_col_pages", call.pages.map(String.init) ?? "–"),
            ("admin_col_rate", call.bitRate.map { "\($0) bit/s" } ?? "–"),
            ("admin_col_resolution", call.fine.map { AdminPage.t($0 ? "admin_fine" : "admin_normal", context) } ?? "–"),
            ("admin_col_ecm", call.ecm.map { AdminPage.t($0 ? "admin_yes" : "admin_no", context) } ?? "–"),
            ("admin_col_state", AdminPage.callState(call.state, context)),
            ("admin_col_outcome", AdminPage.outcome(call.outcome, context)),
            ("admin_col_endcause", call.endCause?.rawValue ?? "–"),
            ("admin_col_reason", [call.reason.map { String(format: "0x%04X", $0) }, call.reasonB3.map { String(format: "B3 0x%04X", $0) },
                                  call.reasonText].compactMap { $0 }.joined(separator: " · ")),
            ("admin_col_detail", call.detail ?? "–"),
        ]
        // What the fax engine reported, right after the ECM row.
        var shown = facts.map { (AdminPage.t($0.0, context), $0.1) }
        let engineRows = FaxEngineView.rows(FaxEngineView.facts(call), language: context.language, withSupport: true)
        shown.insert(contentsOf: engineRows, at: (facts.firstIndex { $0.0 == "admin_col_ecm" } ?? facts.count - 1) + 1)
        var values: [String: Any] = [
            "id": id,
            "facts": shown.map { ["label": $0.0, "value": $0.1.isEmpty ? "–" : $0.1] },
            "events": events.map { ["time": AdminPage.time($0.at, context.language), "text": $0.text] },
            "documents": documents.enumerated().map { n, d in
                ["href": "/admin/calls/\(id)/documents/\(n)", "name": d.filename, "kind": d.kind, "size": AdminPage.bytes(Int64(d.bytes.count))]
            },
            "hasDocuments": !documents.isEmpty,
            "canResend": canResend,
            "recipients": currentRecipients.joined(separator: ", "),
            "notice": flash.notice, "error": flash.error,
        ]
        values.merge(FaxEngineView.pageValues(FaxEngineView.facts(call), language: context.language)) { $1 }
        return PageRenderer.shared.page("admin-call", values, request: request, context: context)
    }

    func document(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let id = try AdminPage.id(context)
        guard let n = context.parameters.get("n").flatMap(Int.init) else { throw HTTPError(.notFound) }
        let documents = try await env.storage.documents(callID: id)
        guard documents.indices.contains(n) else { throw HTTPError(.notFound) }
        let doc = documents[n]
        let type = doc.kind == "pdf" ? "application/pdf" : doc.kind == "tiff" ? "image/tiff" : "application/octet-stream"
        // The stored name comes from the caller's data: only safe characters reach the header.
        let safe = String(doc.filename.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) ? Character($0) : "_" })
        return Response(status: .ok, headers: [
            .contentType: type, .contentDisposition: "attachment; filename=\"\(safe)\"", .cacheControl: "no-store",
        ], body: .init(byteBuffer: ByteBuffer(bytes: doc.bytes)))
    }

    func resendMail(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        let id = try AdminPage.id(context)
        guard let actor = context.actor else { throw HTTPError(.forbidden) }
        let key: String, detail: String
        do {
            switch try await env.admin.resendMail(callID: id, by: actor) {
            case .queued(let recipients): (key, detail) = ("mail_resent", "queued to \(recipients.count) current address(es) of the extension")
            case .notFound: throw HTTPError(.notFound)
            case .notAReceivedFax: (key, detail) = ("not_fax", "refused: not a received fax")
            case .notFinished(let state): (key, detail) = ("not_finished", "refused: the call is \(state.rawValue)")
            case .documentGone: (key, detail) = ("document_gone", "refused: the document is no longer stored")
            case .extensionGone(let name): (key, detail) = ("extension_gone", "refused: extension \(name) is no longer configured")
            }
        } catch is UnavailableAdminOperations.NotRunning {
            (key, detail) = ("not_running", "refused: the gateway is not running")
        }
        try await audit(env, context, action: "call.resend_mail", target: "call \(id)", detail: detail)
        let param = key == "mail_resent" ? "done" : "error"
        throw WebRedirect(to: "/admin/calls/\(id)?\(param)=\(key)")
    }

    func job(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let id = try AdminPage.id(context)
        guard let job = try await env.storage.job(id: id) else { throw HTTPError(.notFound) }
        let events = try await env.storage.jobEvents(jobID: id)
        let flash = AdminPage.flash(request, context, allowed: AdminQueuePages.flashes)
        let facts: [(String, String)] = [
            ("admin_col_time", AdminPage.time(job.createdAt, context.language)),
            ("admin_col_sendat", AdminPage.time(job.sendAt, context.language)),
            ("admin_col_next", job.state.isFinal ? "–" : AdminPage.time(job.nextAttemptAt, context.language)),
            ("admin_col_number", job.number),
            ("admin_col_sender", job.sender),
            ("admin_col_extension", job.extensionName),
            ("admin_col_subject", job.subject),
            ("admin_col_pages", "\(job.pagesSent)/\(job.pages)"),
            ("admin_col_tries", "\(job.tries)"),
            ("admin_col_state", AdminPage.jobState(job.state, context)),
            ("admin_col_result", [job.lastCause, job.lastText].compactMap { $0 }.joined(separator: ": ")),
            ("admin_col_station", job.remoteStationID.map(PartyNumberFormat.cleaned) ?? "–"),
            ("admin_col_rate", job.bitRate.map { "\($0) bit/s" } ?? "–"),
        ]
        // What the fax engine reported on the last try, and the limits the retry policy set for the next one.
        var shown = facts.map { (AdminPage.t($0.0, context), $0.1) }
        shown += FaxEngineView.rows(FaxEngineView.facts(job), language: context.language, withSupport: true, includeECM: true)
        if !job.state.isFinal || job.nextModem != .best {
            shown.append((AdminPage.t("user_fax_next_modem", context), FaxEngineView.modemLimits(job.nextModem, language: context.language)))
        }
        var values: [String: Any] = [
            "id": id,
            "facts": shown.map { ["label": $0.0, "value": $0.1.isEmpty ? "–" : $0.1] },
            "events": events.map { ["time": AdminPage.time($0.at, context.language), "text": $0.text] },
            "actions": AdminQueuePages.actions(job, back: "job"),
            "notice": flash.notice, "error": flash.error,
        ]
        values.merge(FaxEngineView.pageValues(FaxEngineView.facts(job), language: context.language)) { $1 }
        return PageRenderer.shared.page("admin-job", values, request: request, context: context)
    }
}
