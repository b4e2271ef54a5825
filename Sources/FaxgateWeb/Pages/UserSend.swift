import FaxgateCore
import Foundation
import HTTPTypes
import Hummingbird
import MultipartKit
import NIOCore

/// Send a fax from the browser: the form, the submission (multipart upload), and the page that follows it
/// from rendering to the queued job.
struct SendPages: Sendable {
    let env: WebEnvironment

    /// What the user typed, kept to show the form again after a refusal (files must be chosen again: browsers do
    /// not let a page pre-fill a file input).
    struct Values {
        var extensionName = ""
        var number = ""
        var subject = ""
        var cover = false
        var message = ""
        var sendAt = ""
        var resolution = ""
    }

    func form(_ request: Request, _ context: WebContext) async throws -> Response {
        let user = try requireUser(context, request: request)
        var values = Values()
        values.extensionName = UserPage.extensions(of: user, env).first ?? ""
        return page(values, user: user, request, context, error: nil)
    }

    func page(_ values: Values, user: WebUser, _ request: Request, _ context: WebContext, error: String?,
              status: HTTPResponse.Status = .ok) -> Response {
        let extensions = UserPage.extensions(of: user, env).map { ["name": $0, "selected": $0 == values.extensionName] as [String: Any] }
        var page: [String: Any] = [
            "extensions": extensions, "noExtensions": extensions.isEmpty,
            "number": values.number, "subject": values.subject, "cover": values.cover, "message": values.message,
            "sendAt": values.sendAt, "resFine": values.resolution == "fine", "resNormal": values.resolution == "normal",
            "maxMB": env.configuration().web.maxUploadMB,
        ]
        if let error { page["error"] = error }
        return PageRenderer.shared.page("send", page, request: request, context: context, status: status)
    }

    /// One part of the multipart body.
    struct Part {
        var name: String
        var filename: String?
        var bytes: [UInt8]
    }

    static func parts(_ body: ByteBuffer, boundary: String) throws -> [Part] {
        let parser = MultipartParser(boundary: boundary)
        var parts: [Part] = []
        var headers: [(String, String)] = []
        var current: [UInt8] = []
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { buffer in current += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        parser.onPartComplete = {
            let disposition = headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            let name = Self.parameter("name", in: disposition) ?? ""
            parts.append(Part(name: name, filename: Self.parameter("filename", in: disposition), bytes: current))
            headers = []
            current = []
        }
        try parser.execute(body)
        return parts
    }

    /// A parameter of a Content-Disposition value (`name="x"`), quotes removed.
    static func parameter(_ key: String, in value: String) -> String? {
        for item in value.split(separator: ";").dropFirst() {
            let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0].lowercased() == key else { continue }
            var v = kv[1]
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }

    /// `datetime-local` ("2026-12-01T14:30"), read in the gateway's time zone; also full ISO 8601.
    static func sendAt(_ text: String) -> Date? {
        if let date = ISO8601DateFormatter().date(from: text) { return date }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm"] {
            f.dateFormat = format
            if let date = f.date(from: text) { return date }
        }
        return nil
    }

    func submit(_ request: Request, _ context: WebContext) async throws -> Response {
        let user = try requireUser(context, request: request)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased().hasPrefix("multipart/form-data"), let boundary = WebSessionMiddleware.boundary(contentType) else {
            throw HTTPError(.unsupportedMediaType)
        }
        let limit = max(1, env.configuration().web.maxUploadMB) * 1024 * 1024
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: limit) } catch {
            return page(Values(), user: user, request, context, error: UserPage.t("user_send_tooLarge", context), status: .contentTooLarge)
        }
        let parts: [Part]
        do { parts = try Self.parts(body, boundary: boundary) } catch { throw HTTPError(.badRequest) }
        func field(_ name: String) -> String {
            parts.first { $0.name == name && $0.filename == nil }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
        }
        var values = Values()
        values.extensionName = field("extension")
        values.number = field("number")
        values.subject = String(field("subject").prefix(200))
        values.cover = !field("cover").isEmpty
        values.message = String(field("message").prefix(20000))
        values.sendAt = field("send_at").trimmingCharacters(in: .whitespaces)
        values.resolution = field("resolution")
        let files = parts.filter { $0.name == "files" && $0.filename.map { !$0.isEmpty } == true && !$0.bytes.isEmpty }
            .map { WebFaxSubmission.File(name: String(($0.filename ?? "").prefix(200)), bytes: $0.bytes) }

        func refuse(_ text: String, _ status: HTTPResponse.Status = .unprocessableContent) -> Response {
            page(values, user: user, request, context, error: text, status: status)
        }
        guard UserPage.extensions(of: user, env).contains(values.extensionName) else {
            return refuse(UserPage.t("user_send_noExtension", context))
        }
        var at: Date?
        if !values.sendAt.isEmpty {
            guard let date = Self.sendAt(values.sendAt) else { return refuse(UserPage.t("user_send_badTime", context)) }
            at = date
        }
        let submission = WebFaxSubmission(
            extensionName: values.extensionName, number: values.number, subject: values.subject, files: files, cover: values.cover,
            message: values.message, sendAt: at, fine: values.resolution == "fine" ? true : values.resolution == "normal" ? false : nil)
        switch try await env.jobs.submit(submission, by: actor) {
        case .accepted(let id):
            return Response(status: .seeOther, headers: [.location: "/send/\(id)"])
        case .refused(let reason):
            return refuse(UserPage.t("user_send_refused", context) + " " + reason.text(context.language))
        }
    }

    /// Follows a submission: rendering (the page refreshes itself), refused (why), queued (on to the job's page).
    func status(_ request: Request, _ context: WebContext) async throws -> Response {
        _ = try requireUser(context, request: request)
        guard let status = try await env.jobs.submission(id: try UserPage.id(context)) else { throw HTTPError(.notFound) }
        try mayAccess(context, extensionName: status.extensionName)
        if status.state == .queued, status.jobs.count == 1, let id = status.jobs.first?.id {
            return Response(status: .seeOther, headers: [.location: "/sent/\(id)"])
        }
        let reason = status.refusal?.text(context.language) ?? status.refusalText ?? ""
        var response = PageRenderer.shared.page("send-status", [
            "id": status.intakeID,
            "number": status.number,
            "time": UserPage.time(status.submittedAt, context.language),
            "rendering": status.state == .rendering,
            "refused": status.state == .refused,
            "queued": status.state == .queued,
            "reason": reason,
            "jobs": status.jobs.map { SentPages.row($0, context) },
        ], request: request, context: context)
        if status.state == .rendering { response.headers[.init("Refresh")!] = "2; url=/send/\(status.intakeID)" }
        return response
    }
}
