import FaxDocument
import FaxgateCore
import FaxRender
import Foundation
import HTTPTypes
import Hummingbird

/// The user's pages: received faxes and voicemails (/inbox), sent faxes (/sent), send a fax (/send).
/// Every handler starts with `requireUser`; every item a URL names is checked with `mayAccess` against its
/// extension, so an id of another user's extension answers 404 (ids are not capabilities).
extension WebServer {
    static func registerUserRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
        let inbox = InboxPages(env: env)
        router.get("/inbox") { request, context in try await inbox.list(request, context) }
        router.get("/inbox/:id") { request, context in try await inbox.detail(request, context) }
        router.get("/inbox/:id/document.pdf") { request, context in try await inbox.pdf(request, context) }
        router.get("/inbox/:id/page/:page") { request, context in try await inbox.thumbnail(request, context) }
        router.get("/inbox/:id/audio.wav") { request, context in try await inbox.audio(request, context) }
        router.post("/inbox/:id/read") { request, context in try await inbox.markRead(request, context) }

        let sent = SentPages(env: env)
        router.get("/sent") { request, context in try await sent.list(request, context) }
        router.get("/sent/:id") { request, context in try await sent.detail(request, context) }
        router.get("/sent/:id/report.pdf") { request, context in try await sent.report(request, context) }
        router.post("/sent/:id/cancel") { request, context in try await sent.cancel(request, context) }
        router.post("/sent/:id/resend") { request, context in try await sent.resend(request, context) }

        let send = SendPages(env: env)
        router.get("/send") { request, context in try await send.form(request, context) }
        router.post("/send") { request, context in try await send.submit(request, context) }
        router.get("/send/:id") { request, context in try await send.status(request, context) }
    }
}

/// Helpers the user pages share.
enum UserPage {
    static func id(_ context: WebContext, _ name: String = "id") throws -> Int64 {
        guard let text = context.parameters.get(name), let id = Int64(text), id > 0 else { throw HTTPError(.notFound) }
        return id
    }

    static func time(_ date: Date?, _ language: String) -> String { PageFormat.time(date, language, seconds: false) }

    static func duration(_ seconds: Double?) -> String { PageFormat.duration(seconds) }

    static func t(_ key: String, _ context: WebContext) -> String { Strings.text(key, context.language) }

    /// The query's value, trimmed; nil when empty. Read as form fields: a GET form sends a space as `+`, which
    /// Hummingbird's `queryParameters` leaves as it is.
    static func query(_ request: Request, _ name: String) -> String? {
        guard let value = formFields(request.uri.query ?? "")[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// A `yyyy-MM-dd` date of the query at the start of that day (local time).
    static func day(_ text: String?) -> Date? {
        guard let text else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd"
        return f.date(from: text)
    }

    /// The fields of an `application/x-www-form-urlencoded` body (the middleware collected it already for CSRF).
    static func form(_ request: Request, limit: Int = 64 * 1024) async throws -> [String: String] {
        try await postedFields(request, upTo: limit)
    }

    /// A history line for the reader: the spool's path (a server detail) only for admins.
    static func event(_ text: String, _ context: WebContext, _ env: WebEnvironment) -> String {
        guard context.user?.role != .admin else { return text }
        let spool = env.configuration().spoolDirectory
        return spool.isEmpty ? text : text.replacingOccurrences(of: spool, with: "…")
    }

    /// Extension names the user works with: their own; for an admin every configured one.
    static func extensions(of user: WebUser, _ env: WebEnvironment) -> [String] {
        user.role == .admin ? env.configuration().extensions.map(\.name) : user.extensions
    }
}

// MARK: - Received faxes and voicemails

struct InboxPages: Sendable {
    let env: WebEnvironment
    static let pageSize = 50

    func list(_ request: Request, _ context: WebContext) async throws -> Response {
        let user = try requireUser(context, request: request)
        var query = CallQuery(extensions: user.role == .admin ? nil : Set(user.extensions), direction: .incoming,
                              limit: Self.pageSize + 1)
        let text = UserPage.query(request, "q")
        // Digits of the caller or letters of the station id; what the journal stores is matched as typed.
        query.text = text
        let from = UserPage.query(request, "from"), to = UserPage.query(request, "to")
        query.from = UserPage.day(from)
        query.to = UserPage.day(to).map { $0.addingTimeInterval(86400) }
        let minPages = UserPage.query(request, "minpages").flatMap { Int($0) }
        query.minPages = minPages
        let kind = UserPage.query(request, "kind").flatMap(CallRecord.Kind.init(rawValue:))
        query.kinds = kind.map { [$0] }
        let status = UserPage.query(request, "status")
        switch status {
        case "complete": query.states = [.mailed, .mailQueued, .mailFailed, .received]
        case "failed": query.states = [.rejected]
        default: break
        }
        query.beforeID = UserPage.query(request, "before").flatMap { Int64($0) }
        var calls = try await env.storage.searchCalls(query)
        let more = calls.count > Self.pageSize
        calls = Array(calls.prefix(Self.pageSize))
        let read = try await env.storage.readCallIDs(userID: user.id ?? 0, among: calls.compactMap(\.id))
        let format = PartyNumberFormat(line: env.configuration().outgoing.line)
        let rows: [[String: Any]] = calls.map { call in
            [
                "id": call.id ?? 0,
                "time": UserPage.time(call.startedAt, context.language),
                "isVoice": call.kind == .voice,
                "kind": UserPage.t(call.kind == .voice ? "user_kind_voice" : "user_kind_fax", context),
                "caller": format.text(call.caller, language: context.language),
                "extension": call.extensionName ?? "–",
                "pages": call.pages.map(String.init) ?? "–",
                "duration": UserPage.duration(call.durationSeconds),
                "status": Self.statusText(call, context),
                "unread": !read.contains(call.id ?? 0),
            ]
        }
        var nextQuery = formFields(request.uri.query ?? "").filter { $0.key != "before" }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
        if more, let last = calls.last?.id { nextQuery.append("before=\(last)") }
        return PageRenderer.shared.page("inbox", [
            "calls": rows, "empty": rows.isEmpty,
            "q": text ?? "", "from": from ?? "", "to": to ?? "", "minpages": minPages.map(String.init) ?? "",
            "kindFax": kind == .fax, "kindVoice": kind == .voice,
            "statusComplete": status == "complete", "statusFailed": status == "failed",
            "next": more ? "/inbox?" + nextQuery.joined(separator: "&") : "",
        ], request: request, context: context)
    }

    static func statusText(_ call: CallRecord, _ context: WebContext) -> String {
        switch call.outcome {
        case .complete?: return UserPage.t("user_outcome_complete", context)
        case .partial?: return UserPage.t("user_outcome_partial", context)
        case .failed?: return UserPage.t("user_outcome_failed", context)
        case .rejected?: return UserPage.t("user_outcome_rejected", context)
        case nil: return UserPage.t(call.state == .receiving ? "user_outcome_receiving" : "user_outcome_unknown", context)
        }
    }

    /// The call of the URL, when the user may see it: an incoming call of one of their extensions.
    func call(_ request: Request, _ context: WebContext) async throws -> CallRecord {
        _ = try requireUser(context, request: request)
        let id = try UserPage.id(context)
        guard let call = try await env.storage.call(id: id), call.direction == .incoming else { throw HTTPError(.notFound) }
        try mayAccess(context, extensionName: call.extensionName)
        return call
    }

    func detail(_ request: Request, _ context: WebContext) async throws -> Response {
        let call = try await call(request, context)
        let user = try requireUser(context)
        let id = call.id ?? 0
        // Opening it marks it read.
        try await env.storage.markRead(callID: id, userID: user.id ?? 0)
        let format = PartyNumberFormat(line: env.configuration().outgoing.line)
        let documents = try await env.storage.documents(callID: id)
        let pageCount = call.kind == .fax ? (FaxThumbnail.pages(spoolPath: call.spoolPath)?.count ?? 0) : 0
        let events = try await env.storage.events(callID: id).map {
            ["time": UserPage.time($0.at, context.language), "text": UserPage.event($0.text, context, env)]
        }
        let resolution: String = switch call.fine {
        case true?: UserPage.t("user_resolution_fine", context)
        case false?: UserPage.t("user_resolution_normal", context)
        case nil: "–"
        }
        let engine = FaxEngineView.facts(call)
        var values: [String: Any] = [
            "id": id,
            "isVoice": call.kind == .voice,
            "kind": UserPage.t(call.kind == .voice ? "user_kind_voice" : "user_kind_fax", context),
            "time": UserPage.time(call.startedAt, context.language),
            "caller": format.text(call.caller, language: context.language),
            "called": format.text(call.called, language: context.language),
            "extension": call.extensionName ?? "–",
            // Sent by the remote machine: shown HTML-escaped by the template, never as markup.
            "stationID": call.remoteStationID.map { PartyNumberFormat.cleaned($0) } ?? "",
            "pages": call.pages.map(String.init) ?? "–",
            "resolution": resolution,
            "rate": call.bitRate.map { "\($0) bit/s" } ?? "–",
            "duration": UserPage.duration(call.durationSeconds),
            "status": Self.statusText(call, context),
            "hasPDF": documents.contains { $0.kind == "pdf" },
            "hasThumbnails": pageCount > 0,
            "thumbnails": (0..<min(pageCount, 50)).map { ["n": $0 + 1, "id": id] as [String: Any] },
            "hasAudio": call.kind == .voice && call.spoolPath.map { FileManager.default.fileExists(atPath: $0) } == true,
            "events": events,
            "engineFacts": FaxEngineView.rows(engine, language: context.language, withSupport: false, includeECM: true)
                .map { ["label": $0.0, "value": $0.1] },
        ]
        values.merge(FaxEngineView.pageValues(engine, language: context.language)) { $1 }
        return PageRenderer.shared.page("inbox-detail", values, request: request, context: context)
    }

    func pdf(_ request: Request, _ context: WebContext) async throws -> Response {
        let call = try await call(request, context)
        guard let document = try await env.storage.documents(callID: call.id ?? 0).first(where: { $0.kind == "pdf" }) else {
            throw HTTPError(.notFound)
        }
        let name = safeFilename(document.filename, fallback: "fax-\(call.id ?? 0).pdf")
        return RangedBody.response(document.bytes, contentType: "application/pdf", request: request,
                                   disposition: "attachment; filename=\"\(name.hasSuffix(".pdf") ? name : name + ".pdf")\"")
    }

    func thumbnail(_ request: Request, _ context: WebContext) async throws -> Response {
        let call = try await call(request, context)
        let text = context.parameters.get("page") ?? ""
        guard let n = Int(text.hasSuffix(".png") ? String(text.dropLast(4)) : text), n >= 1,
              let pages = FaxThumbnail.pages(spoolPath: call.spoolPath), n <= pages.count else { throw HTTPError(.notFound) }
        let width = UserPage.query(request, "w").flatMap { Int($0) }.map { max(50, min(1000, $0)) } ?? 240
        let png = FaxThumbnail.png(pages[n - 1], width: width)
        return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "private, max-age=300"],
                        body: .init(byteBuffer: ByteBuffer(bytes: png)))
    }

    func audio(_ request: Request, _ context: WebContext) async throws -> Response {
        let call = try await call(request, context)
        guard call.kind == .voice, let wav = VoicemailAudio.wav(spoolPath: call.spoolPath) else { throw HTTPError(.notFound) }
        return RangedBody.response(wav, contentType: "audio/wav", request: request)
    }

    func markRead(_ request: Request, _ context: WebContext) async throws -> Response {
        let call = try await call(request, context)
        let user = try requireUser(context)
        try await env.storage.markRead(callID: call.id ?? 0, userID: user.id ?? 0)
        let back = localPath(try await UserPage.form(request)["back"]) ?? "/inbox"
        return Response(status: .seeOther, headers: [.location: back.hasPrefix("/inbox") ? back : "/inbox"])
    }
}

// MARK: - Sent faxes

struct SentPages: Sendable {
    let env: WebEnvironment
    static let pageSize = 50

    func list(_ request: Request, _ context: WebContext) async throws -> Response {
        let user = try requireUser(context, request: request)
        var query = JobQuery(extensions: user.role == .admin ? nil : Set(user.extensions), limit: Self.pageSize + 1)
        let state = UserPage.query(request, "state")
        switch state {
        case "waiting": query.states = [.ready, .deferred, .active]
        case "done": query.states = [.done]
        case "failed": query.states = [.failed, .canceled]
        default: break
        }
        let text = UserPage.query(request, "q")
        query.text = text
        query.beforeID = UserPage.query(request, "before").flatMap { Int64($0) }
        var jobs = try await env.storage.searchJobs(query)
        let more = jobs.count > Self.pageSize
        jobs = Array(jobs.prefix(Self.pageSize))
        let rows = jobs.map { Self.row($0, context) }
        var next = "/sent?"
        if let state { next += "state=\(state)&" }
        if let text { next += "q=\(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&" }
        return PageRenderer.shared.page("sent", [
            "jobs": rows, "empty": rows.isEmpty, "q": text ?? "",
            "stateWaiting": state == "waiting", "stateDone": state == "done", "stateFailed": state == "failed",
            "next": more ? next + "before=\(jobs.last?.id ?? 0)" : "",
        ], request: request, context: context)
    }

    static func stateText(_ state: FaxJob.State, _ context: WebContext) -> String { UserPage.t("user_job_\(state.rawValue)", context) }

    static func row(_ job: FaxJob, _ context: WebContext) -> [String: Any] {
        let text = OutgoingMailText(language: context.language)
        return [
            "id": job.id ?? 0,
            "time": UserPage.time(job.createdAt, context.language),
            "number": job.number,
            "extension": job.extensionName,
            "subject": text.subjectText(job.subject),
            "state": stateText(job.state, context),
            "tries": job.tries,
            "pages": "\(job.pagesSent)/\(job.pages)",
            // The typed cause in the reader's language (the transport's own words only in English).
            "result": job.lastCause == nil ? "–" : text.resultText(job),
            "sender": job.sender,
        ]
    }

    func job(_ request: Request, _ context: WebContext) async throws -> FaxJob {
        _ = try requireUser(context, request: request)
        guard let job = try await env.storage.job(id: try UserPage.id(context)) else { throw HTTPError(.notFound) }
        try mayAccess(context, extensionName: job.extensionName)
        return job
    }

    func detail(_ request: Request, _ context: WebContext) async throws -> Response {
        try await detailPage(try await job(request, context), request, context, message: nil, error: nil)
    }

    func detailPage(_ job: FaxJob, _ request: Request, _ context: WebContext, message: String?, error: String?,
                    status: HTTPResponse.Status = .ok) async throws -> Response {
        let id = job.id ?? 0
        let events = try await env.storage.jobEvents(jobID: id).map {
            ["time": UserPage.time($0.at, context.language), "text": UserPage.event($0.text, context, env)]
        }
        var values = Self.row(job, context)
        values["sendAt"] = UserPage.time(job.sendAt, context.language)
        values["next"] = job.state.isFinal ? "–" : UserPage.time(max(job.sendAt, job.nextAttemptAt), context.language)
        values["dialed"] = UserPage.time(job.dialedAt, context.language)
        values["remote"] = job.remoteStationID.map { PartyNumberFormat.cleaned($0) } ?? "–"
        values["rate"] = job.bitRate.map { "\($0) bit/s" } ?? "–"
        values["mayCancel"] = job.state == .ready || job.state == .deferred
        values["mayResend"] = job.state.isFinal
        values["hasReport"] = job.state == .done || job.state == .failed
        values["events"] = events
        values["isFinal"] = job.state.isFinal
        values["progress"] = Self.progress(job, context)
        // The failure is already in the result line (resultText); the rest of what the engine reported goes here.
        let engine = FaxEngineView.facts(job)
        values["engineFacts"] = FaxEngineView.rows(engine, language: context.language, withSupport: false, includeECM: true, includeFailure: false)
            .map { ["label": $0.0, "value": $0.1] }
        values.merge(FaxEngineView.pageValues(engine, language: context.language)) { $1 }
        if let message { values["message"] = message }
        if let error { values["error"] = error }
        var response = PageRenderer.shared.page("sent-detail", values, request: request, context: context, status: status)
        // Until the job is final the page follows it by itself (no script: the browser's refresh).
        if !job.state.isFinal { response.headers[.init("Refresh")!] = "3; url=/sent/\(id)" }
        return response
    }

    /// rendering → queued → dialling → sent/failed, with the step the job is at marked.
    static func progress(_ job: FaxJob, _ context: WebContext) -> [[String: Any]] {
        let steps = ["rendering", "queued", "dialling", job.state == .failed || job.state == .canceled ? job.state.rawValue : "sent"]
        let reached: Int = switch job.state {
        case .ready, .deferred: 1
        case .active, .uncertain: 2
        case .done, .failed, .canceled: 3
        }
        return steps.enumerated().map { n, step in
            ["text": UserPage.t("user_progress_\(step)", context), "done": n < reached, "current": n == reached] as [String: Any]
        }
    }

    /// The send report, made from the job's facts as the status mail makes it (with the document's first page).
    func report(_ request: Request, _ context: WebContext) async throws -> Response {
        let job = try await job(request, context)
        guard job.state == .done || job.state == .failed else { throw HTTPError(.notFound) }
        let text = OutgoingMailText(language: job.language)
        var facts = SendReportFacts(
            number: job.number, remoteStationID: job.remoteStationID ?? "", start: job.dialedAt ?? job.createdAt,
            duration: job.endedAt.map { $0.timeIntervalSince(job.connectedAt ?? job.dialedAt ?? $0) } ?? 0,
            pagesSent: job.pagesSent, pagesTotal: job.pages, resolution: job.fine ? .fine : .normal,
            bitRate: job.bitRate ?? 0, resultText: text.resultText(job),
            success: job.state == .done, jobID: "\(job.id ?? 0)", sender: job.sender, language: job.language)
        facts.documentPageNumber = job.documentPage + 1
        let pages = FileManager.default.contents(atPath: job.sffPath).flatMap { try? SFFReader.read([UInt8]($0)).pages }
        let first = pages.flatMap { $0.indices.contains(job.documentPage) ? $0[job.documentPage] : $0.first }
        let pdf: [UInt8]
        do { pdf = try await SendReport.pdf(facts, firstPage: first) } catch {
            env.logger.error("send report could not be made for the web", metadata: ["job": "\(job.id ?? 0)", "error": "\(error)"])
            throw HTTPError(.internalServerError)
        }
        return RangedBody.response(pdf, contentType: "application/pdf", request: request,
                                   disposition: "attachment; filename=\"sendebericht-\(job.id ?? 0).pdf\"")
    }

    func cancel(_ request: Request, _ context: WebContext) async throws -> Response {
        let job = try await job(request, context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let result = try await env.jobs.cancel(jobID: job.id ?? 0, by: actor)
        let current = try await env.storage.job(id: job.id ?? 0) ?? job
        switch result {
        case .canceled:
            return try await detailPage(current, request, context, message: UserPage.t("user_sent_canceled", context), error: nil)
        case .notFound: throw HTTPError(.notFound)
        case .onTheLine:
            return try await detailPage(current, request, context, message: nil, error: UserPage.t("user_sent_onTheLine", context), status: .conflict)
        case .finished(let state):
            return try await detailPage(current, request, context, message: nil,
                                        error: UserPage.t("user_sent_alreadyFinal", context) + " " + Self.stateText(state, context), status: .conflict)
        }
    }

    func resend(_ request: Request, _ context: WebContext) async throws -> Response {
        let job = try await job(request, context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        switch try await env.jobs.resend(jobID: job.id ?? 0, by: actor) {
        case .queued(let newID): return Response(status: .seeOther, headers: [.location: "/sent/\(newID)"])
        case .notFound: throw HTTPError(.notFound)
        case .notFinished(let state):
            return try await detailPage(job, request, context, message: nil,
                                        error: UserPage.t("user_sent_notFinished", context) + " " + Self.stateText(state, context), status: .conflict)
        case .documentGone:
            return try await detailPage(job, request, context, message: nil, error: UserPage.t("user_sent_documentGone", context), status: .conflict)
        case .refused(let reason):
            return try await detailPage(job, request, context, message: nil,
                                        error: UserPage.t("user_sent_resendRefused", context) + " " + reason.text(context.language), status: .conflict)
        }
    }
}
