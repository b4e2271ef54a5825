import FaxgateCore
import Foundation
import Hummingbird
import NIOPosix

/// /admin/privacy/...: the Art. 30 record, subject export and erasure, legal holds, support snapshots and the
/// retention audit. Admin only (role admin and a verified second factor, `requireAdmin` first in every handler);
/// every action is audited; POSTs carry the CSRF token (the session middleware refuses them otherwise).
/// Passphrases appear in exactly one response body each and nowhere else: not in a URL, a log line, the audit
/// detail or a file.
extension WebServer {
    static func registerPrivacyRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
        let pages = PrivacyPages(env: env)
        router.get("/admin/privacy") { request, context in try await pages.overview(request, context) }
        router.get("/admin/privacy/record") { request, context in try await pages.record(request, context) }
        router.get("/admin/privacy/record.md") { request, context in try await pages.recordDownload(request, context, json: false) }
        router.get("/admin/privacy/record.json") { request, context in try await pages.recordDownload(request, context, json: true) }
        router.get("/admin/privacy/subject") { request, context in try await pages.subject(request, context) }
        router.post("/admin/privacy/subject/export") { request, context in try await pages.export(request, context) }
        router.get("/admin/privacy/subject/export/:token") { request, context in try await pages.exportDownload(request, context) }
        router.post("/admin/privacy/subject/erase") { request, context in try await pages.erase(request, context) }
        router.get("/admin/privacy/holds") { request, context in try await pages.holds(request, context) }
        router.post("/admin/privacy/holds") { request, context in try await pages.addHold(request, context) }
        router.post("/admin/privacy/holds/release") { request, context in try await pages.releaseHold(request, context) }
        router.get("/admin/privacy/snapshots") { request, context in try await pages.snapshots(request, context) }
        router.post("/admin/privacy/snapshots") { request, context in try await pages.createSnapshot(request, context) }
        router.get("/admin/privacy/snapshots/:name/download") { request, context in try await pages.downloadSnapshot(request, context) }
        router.post("/admin/privacy/snapshots/:name/delete") { request, context in try await pages.deleteSnapshot(request, context) }
        router.get("/admin/privacy/retention") { request, context in try await pages.retention(request, context) }
        router.post("/admin/privacy/retention/preview") { request, context in try await pages.runRetention(request, context, dryRun: true) }
        router.post("/admin/privacy/retention/run") { request, context in try await pages.runRetention(request, context, dryRun: false) }
    }
}

/// Subject exports waiting for their one download: a random token (not the file name, not guessable) bound to
/// the admin who made it, gone after the download or an hour.
actor PendingExports {
    struct Entry { var path: String; var userID: Int64?; var expires: Date }
    private var entries: [String: Entry] = [:]

    func add(path: String, userID: Int64?) -> String {
        purge()
        let token = WebSessions.randomToken()
        entries[token] = Entry(path: path, userID: userID, expires: Date().addingTimeInterval(3600))
        return token
    }

    /// The file for `token` if `userID` made it and it has not expired; the token is used up either way.
    func take(_ token: String, userID: Int64?) -> String? {
        purge()
        guard let entry = entries[token], entry.userID == userID else { return nil }
        entries[token] = nil
        return entry.path
    }

    private func purge() {
        let now = Date()
        for (token, entry) in entries where entry.expires < now {
            try? SecureFileRemoval.remove(entry.path)
            entries[token] = nil
        }
    }
}

struct PrivacyPages: Sendable {
    let env: WebEnvironment
    let exports = PendingExports()
    var renderer: PageRenderer { PageRenderer.shared }
    var ops: any PrivacyOperations { env.privacy }

    // MARK: Overview

    func overview(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let lastRun = try await ops.retentionAudit(limit: 200).first { $0.action == "retention" }
        return renderer.page("privacy-overview", [
            "snapshotCount": ops.snapshots().count,
            "holdCount": try await ops.holds().count,
            "lastRun": lastRun.map { Self.time($0.at, context.language) } as Any,
        ], request: request, context: context)
    }

    // MARK: Art. 30 record

    /// The record's own JSON rendering is the source of the page, so page, download and `gdpr record` say the same.
    func record(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let json = try await ops.record().json(language: context.language)
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw HTTPError(.internalServerError)
        }
        let categories = (object["categories"] as? [[String: Any]] ?? []).map { c -> [String: Any] in
            let days = c["retention_days"] as? Int ?? 0
            return ["key": c["key"] as? String ?? "", "data": c["data"] as? String ?? "", "purpose": c["purpose"] as? String ?? "",
                    "days": days, "forever": days == 0]
        }
        let holds = object["legal_holds"] as? Int ?? 0
        let generated = (object["generated"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
        return renderer.page("privacy-record", [
            "generated": Self.time(generated ?? Date(), context.language),
            "categories": categories,
            "recipients": object["recipients"] as? [[String: String]] ?? [],
            "measures": object["technical_measures"] as? [String] ?? [],
            "extensions": object["extensions"] as? Int ?? 0,
            "legalHolds": (holds > 0 ? String(holds) : nil) as Any,
        ], request: request, context: context)
    }

    func recordDownload(_ request: Request, _ context: WebContext, json: Bool) async throws -> Response {
        try requireAdmin(context, request: request)
        let language = request.uri.queryParameters.get("lang").flatMap { ["de", "en"].contains($0) ? $0 : nil } ?? context.language
        let record = await ops.record()
        let text = json ? try record.json(language: language) + "\n" : record.markdown(language: language)
        try await audit(env, context, action: "privacy.record.download", target: "record", detail: "\(json ? "json" : "md"), \(language)")
        return Self.attachment(ByteBuffer(string: text), name: "faxgate-art30-record-\(language).\(json ? "json" : "md")",
                               type: json ? "application/json; charset=utf-8" : "text/markdown; charset=utf-8")
    }

    // MARK: Subject access and erasure

    func subject(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        return renderer.page("privacy-subject", [:], request: request, context: context)
    }

    /// The subject of a form, or the page again with the error (nothing done, nothing audited).
    func formSubject(_ form: [String: String], _ request: Request, _ context: WebContext, page: String) -> (SubjectID?, Response?) {
        let text = (form["subject"] ?? "").trimmingCharacters(in: .whitespaces)
        guard text.count <= 254, let subject = ops.subject(text) else {
            return (nil, renderer.page(page, ["invalid": true, "subjectText": text], request: request, context: context, status: .badRequest))
        }
        return (subject, nil)
    }

    func export(_ request: Request, _ context: WebContext) async throws -> Response {
        let user = try requireAdmin(context, request: request)
        let form = try await Self.form(request, context)
        let (found, errorPage) = formSubject(form, request, context, page: "privacy-subject")
        guard let subject = found else { return errorPage! }
        let result = try await ops.exportSubject(subject)
        let token = await exports.add(path: result.path, userID: user.id)
        // The audit names the kind of subject and the count: the number itself would outlive an erasure there.
        try await audit(env, context, action: "privacy.subject.export", target: "subject (\(subject.kind.rawValue))", detail: "\(result.items) item(s)")
        return renderer.page("privacy-subject", [
            "subjectText": subject.description,
            "export": ["subject": subject.description, "items": result.items, "passphrase": result.passphrase,
                       "download": "/admin/privacy/subject/export/\(token)"] as [String: Any],
        ], request: request, context: context)
    }

    func exportDownload(_ request: Request, _ context: WebContext) async throws -> Response {
        let user = try requireAdmin(context, request: request)
        guard let token = context.parameters.get("token"), let path = await exports.take(token, userID: user.id) else {
            throw HTTPError(.notFound, message: Strings.text("privacy_export_gone", context.language))
        }
        let bytes = try await NIOThreadPool.singleton.runIfActive { () throws -> [UInt8] in
            defer { try? SecureFileRemoval.remove(path) }
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        try await audit(env, context, action: "privacy.subject.export.download", target: "subject export", detail: "\(bytes.count) bytes")
        return Self.attachment(ByteBuffer(bytes: bytes), name: "faxgate-subject-export.zip", type: "application/zip")
    }

    /// Without `confirm=yes` a dry run: the page shows what would go and asks again. A subject under legal hold is
    /// refused with the hold's reason either way.
    func erase(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let form = try await Self.form(request, context)
        let (found, errorPage) = formSubject(form, request, context, page: "privacy-subject")
        guard let subject = found else { return errorPage! }
        let dryRun = form["confirm"] != "yes"
        let target = "subject (\(subject.kind.rawValue))"
        switch try await ops.eraseSubject(subject, dryRun: dryRun) {
        case .refused(let hold):
            try await audit(env, context, action: "privacy.subject.erase.refused", target: target, detail: "legal hold")
            return renderer.page("privacy-subject", [
                "subjectText": subject.description,
                "refused": ["subject": subject.description, "fromConfiguration": hold.fromConfiguration, "reason": hold.reason,
                            "since": hold.since.map { Self.time($0, context.language) } as Any] as [String: Any],
            ], request: request, context: context, status: .conflict)
        case .done(let report, let logFiles):
            let lines = report.lines.map { l -> [String: Any] in
                ["category": l.category, "found": l.expired, "held": l.held, "items": l.deleted.items, "rows": l.deleted.rows,
                 "files": l.deleted.files, "bytes": l.deleted.bytes]
            }
            let deleted = report.lines.reduce(0) { $0 + $1.deleted.items }
            let held = report.lines.reduce(0) { $0 + $1.held }
            try await audit(env, context, action: dryRun ? "privacy.subject.erase.preview" : "privacy.subject.erase", target: target,
                            detail: dryRun ? "\(report.lines.reduce(0) { $0 + $1.expired }) item(s) found"
                                           : "\(deleted) item(s) deleted, \(held) held, \(logFiles) log file(s)")
            return renderer.page("privacy-subject", [
                "subjectText": subject.description,
                "erase": ["subject": subject.description, "dryRun": dryRun, "lines": lines, "nothing": report.lines.isEmpty,
                          "logFiles": (logFiles > 0 ? String(logFiles) : nil) as Any] as [String: Any],
            ], request: request, context: context)
        }
    }

    // MARK: Legal holds

    func holds(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        return try await holdsPage(request, context, [:])
    }

    func holdsPage(_ request: Request, _ context: WebContext, _ extra: [String: Any], status: HTTPResponse.Status = .ok) async throws -> Response {
        let list = try await ops.holds().map { h -> [String: Any] in
            ["subject": h.subject.description, "reason": h.reason, "fromConfiguration": h.fromConfiguration,
             "since": h.since.map { Self.time($0, context.language) } ?? ""]
        }
        var values = extra
        values["holds"] = list
        values["empty"] = list.isEmpty
        return renderer.page("privacy-holds", values, request: request, context: context, status: status)
    }

    func addHold(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let form = try await Self.form(request, context)
        guard let subject = ops.subject((form["subject"] ?? "").trimmingCharacters(in: .whitespaces)) else {
            return try await holdsPage(request, context, ["invalid": true], status: .badRequest)
        }
        let reason = String(UntrustedText.clean(form["reason"] ?? "").prefix(500))
        try await ops.addHold(subject, reason: reason)
        try await audit(env, context, action: "privacy.hold.add", target: "subject (\(subject.kind.rawValue))", detail: reason)
        return try await holdsPage(request, context, ["added": true])
    }

    func releaseHold(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let form = try await Self.form(request, context)
        guard let subject = ops.subject((form["subject"] ?? "").trimmingCharacters(in: .whitespaces)) else {
            return try await holdsPage(request, context, ["invalid": true], status: .badRequest)
        }
        guard try await ops.releaseHold(subject) else {
            return try await holdsPage(request, context, ["notFound": true], status: .notFound)
        }
        try await audit(env, context, action: "privacy.hold.release", target: "subject (\(subject.kind.rawValue))")
        return try await holdsPage(request, context, ["released": true])
    }

    // MARK: Snapshots

    func snapshots(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        return snapshotsPage(request, context, [:])
    }

    func snapshotsPage(_ request: Request, _ context: WebContext, _ extra: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.timeZone = TimeZone(identifier: "UTC")
        day.dateFormat = "yyyy-MM-dd"
        let list = ops.snapshots().map { s -> [String: Any] in
            let period = s.from == nil && s.to == nil ? nil : "\(s.from.map(day.string) ?? "…") – \(s.to.map(day.string) ?? "…")"
            return ["name": s.name, "created": Self.time(s.createdAt, context.language), "bytes": s.bytes,
                    "period": period as Any, "mailedTo": s.mailedTo ?? ""]
        }
        var values = extra
        values["snapshots"] = list
        values["empty"] = list.isEmpty
        return renderer.page("privacy-snapshots", values, request: request, context: context, status: status)
    }

    /// Runs the snapshot (seconds) off the event loop, then answers the list with the passphrase shown once: the
    /// response to this POST is its only appearance (no redirect that would need it stored).
    func createSnapshot(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let form = try await Self.form(request, context)
        func day(_ name: String) -> String? {
            let v = (form[name] ?? "").trimmingCharacters(in: .whitespaces)
            return v.isEmpty ? nil : v
        }
        let created: CreatedSnapshot
        do {
            created = try await ops.createSnapshot(fromDay: day("from"), toDay: day("to"))
        } catch is BadSnapshotDay {
            return snapshotsPage(request, context, ["badDate": true, "from": day("from") ?? "", "to": day("to") ?? ""], status: .badRequest)
        } catch {
            env.logger.error("snapshot failed", metadata: ["error": "\(error)"])
            try await audit(env, context, action: "privacy.snapshot.create.failed", target: "snapshot")
            return snapshotsPage(request, context, ["failure": "\(error)"], status: .internalServerError)
        }
        try await audit(env, context, action: "privacy.snapshot.create", target: "snapshot \(created.info.name)",
                        detail: "\(created.info.bytes) bytes, \(created.info.entries) files, logs \(day("from") ?? "…") – \(day("to") ?? "…")")
        return snapshotsPage(request, context, ["created": ["name": created.info.name, "passphrase": created.passphrase]])
    }

    func downloadSnapshot(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        // Only a name the list shows; anything else (paths, other files) is not found.
        guard let name = context.parameters.get("name"), let path = ops.snapshotPath(named: name) else { throw HTTPError(.notFound) }
        let body = try await FileIO().loadFile(path: path, context: context)
        try await audit(env, context, action: "privacy.snapshot.download", target: "snapshot \(name)")
        var response = Response(status: .ok, headers: [.contentType: "application/zip"], body: body)
        response.headers[.contentDisposition] = "attachment; filename=\"\(name).zip\""
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func deleteSnapshot(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        guard let name = context.parameters.get("name"), ops.snapshotPath(named: name) != nil else { throw HTTPError(.notFound) }
        let counts = try await ops.deleteSnapshot(named: name)
        try await audit(env, context, action: "privacy.snapshot.delete", target: "snapshot \(name)", detail: "\(counts.files) file(s), \(counts.bytes) bytes")
        return snapshotsPage(request, context, ["deleted": true])
    }

    // MARK: Retention

    func retention(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        return try await retentionPage(request, context, report: nil)
    }

    func retentionPage(_ request: Request, _ context: WebContext, report: RetentionReport?) async throws -> Response {
        let trail = try await ops.retentionAudit(limit: 100).map { r -> [String: Any] in
            ["time": Self.time(r.at, context.language), "action": r.action, "category": r.category, "items": r.items, "rows": r.rows,
             "files": r.files, "bytes": r.bytes, "held": r.held, "exported": r.exported]
        }
        var values: [String: Any] = ["audit": trail, "auditEmpty": trail.isEmpty]
        if let report {
            values["report"] = [
                "dryRun": report.dryRun,
                "lines": report.lines.map { l -> [String: Any] in
                    ["category": l.category, "days": l.days, "expired": l.expired, "held": l.held, "exported": l.exported,
                     "items": l.deleted.items, "rows": l.deleted.rows, "files": l.deleted.files, "bytes": l.deleted.bytes, "note": l.note ?? ""]
                },
            ] as [String: Any]
        }
        return renderer.page("privacy-retention", values, request: request, context: context)
    }

    func runRetention(_ request: Request, _ context: WebContext, dryRun: Bool) async throws -> Response {
        try requireAdmin(context, request: request)
        let report = try await ops.retentionRun(dryRun: dryRun)
        let expired = report.lines.reduce(0) { $0 + $1.expired }
        let deleted = report.lines.reduce(0) { $0 + $1.deleted.items }
        try await audit(env, context, action: dryRun ? "privacy.retention.preview" : "privacy.retention.run", target: "retention",
                        detail: dryRun ? "\(expired) item(s) expired" : "\(deleted) item(s) deleted of \(expired) expired")
        return try await retentionPage(request, context, report: report)
    }

    // MARK: Helpers

    static func form(_ request: Request, _ context: WebContext) async throws -> [String: String] {
        try await postedFields(request)
    }

    static func time(_ date: Date, _ language: String) -> String { PageFormat.time(date, language, seconds: true) }

    static func attachment(_ buffer: ByteBuffer, name: String, type: String) -> Response {
        var response = Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: buffer))
        response.headers[.contentDisposition] = "attachment; filename=\"\(name)\""
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
