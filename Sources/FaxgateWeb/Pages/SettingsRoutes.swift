import FaxgateCore
import Foundation
import Hummingbird

extension WebServer {
    /// /admin/extensions, /admin/senders, /admin/policy, /admin/retention: the office settings (README
    /// "Settings: file and web"). Every form names the version it was built from; a save checks the effective
    /// configuration with `config check`'s rules and shows its texts next to the form when it refuses.
    static func registerSettingsRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
        let pages = SettingsPages(env: env)
        router.get("/admin/extensions") { request, context in try await pages.extensions(request, context) }
        router.post("/admin/extensions/catch-all") { request, context in try await pages.saveCatchAll(request, context) }
        router.get("/admin/extensions/new") { request, context in try await pages.editExtension(request, context, index: nil) }
        router.post("/admin/extensions/new") { request, context in try await pages.saveExtension(request, context, index: nil) }
        router.get("/admin/extensions/:index") { request, context in
            try await pages.editExtension(request, context, index: try SettingsPages.index(context))
        }
        router.post("/admin/extensions/:index") { request, context in
            try await pages.saveExtension(request, context, index: try SettingsPages.index(context))
        }
        router.post("/admin/extensions/:index/remove") { request, context in
            try await pages.removeExtension(request, context, index: try SettingsPages.index(context))
        }
        router.post("/admin/extensions/:index/greeting") { request, context in
            try await pages.uploadGreeting(request, context, index: try SettingsPages.index(context))
        }
        router.get("/admin/extensions/:index/greeting.wav") { request, context in
            try await pages.greeting(request, context, index: try SettingsPages.index(context))
        }
        router.get("/admin/senders") { request, context in try await pages.senders(request, context) }
        router.post("/admin/senders/:index") { request, context in
            try await pages.saveSenders(request, context, index: try SettingsPages.index(context))
        }
        router.get("/admin/policy") { request, context in try await pages.policy(request, context) }
        router.post("/admin/policy") { request, context in try await pages.savePolicy(request, context) }
        router.get("/admin/retention") { request, context in try await pages.retention(request, context) }
        router.post("/admin/retention") { request, context in try await pages.saveRetention(request, context) }
        router.post("/admin/retention/holds") { request, context in try await pages.saveHolds(request, context) }
    }
}

/// The handlers of the settings pages. Forms are urlencoded (the greeting upload is multipart); every value a
/// page shows is HTML-escaped by mustache; no text from the URL is printed.
struct SettingsPages: Sendable {
    let env: WebEnvironment

    static func index(_ context: WebContext) throws -> Int {
        guard let text = context.parameters.get("index"), let i = Int(text), i >= 0 else { throw HTTPError(.notFound) }
        return i
    }

    static func t(_ key: String, _ context: WebContext) -> String { Strings.text(key, context.language) }

    /// Every field of an urlencoded body, with all values of repeated names (checkbox groups).
    static func form(_ request: Request) async throws -> [String: [String]] {
        try await postedForm(request, upTo: 256 * 1024)
    }

    /// A list typed as lines, commas or spaces.
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
    }

    /// Redirect after a save (POST → GET), with a message key the page knows.
    static func done(_ path: String) -> WebRedirect { WebRedirect(to: path + (path.contains("?") ? "&" : "?") + "done=saved") }

    func notice(_ request: Request, _ context: WebContext) -> String {
        request.uri.queryParameters.get("done") == "saved" ? Self.t("settings_saved", context) : ""
    }

    /// Turns a save result into the next answer: a redirect when stored, the form again with the reasons otherwise.
    func outcome(_ result: OfficeSaveResult, redirect: String, context: WebContext,
                 again: ([String]) async throws -> Response) async throws -> Response {
        switch result {
        case .saved: throw Self.done(redirect)
        case .invalid(let messages): return try await again(messages)
        case .changedMeanwhile: return try await again([Self.t("settings_changed_meanwhile", context)])
        }
    }

    func values(_ snapshot: OfficeSettingsSnapshot, _ extra: [String: Any]) -> [String: Any] {
        var out = extra
        out["version"] = snapshot.version
        out["updatedBy"] = snapshot.updatedBy
        out["updatedAt"] = AdminPage.time(snapshot.updatedAt, "en")
        out["hasErrors"] = !((extra["errors"] as? [String])?.isEmpty ?? true)
        return out
    }

    // MARK: - Extensions

    func extensions(_ request: Request, _ context: WebContext, errors: [String] = [], status: HTTPResponse.Status = .ok) async throws -> Response {
        try requireAdmin(context, request: request)
        let snapshot = try await env.office.current()
        let rows: [[String: Any]] = snapshot.settings.extensions.enumerated().map { i, e in
            [
                "index": i, "name": e.name, "numbers": e.numbers.joined(separator: ", "), "email": e.email.joined(separator: ", "),
                "formats": e.formats.joined(separator: ", "), "language": e.language, "stationID": e.stationID ?? "",
                "voicemail": e.voicemail?.enabled == true ? Self.t("settings_yes", context) : Self.t("settings_no", context),
            ]
        }
        let catchAll = snapshot.settings.catchAll
        return PageRenderer.shared.page("settings-extensions", values(snapshot, [
            "extensions": rows,
            "catchAllOptions": [["name": "", "label": Self.t("settings_catchall_none", context), "selected": catchAll == nil] as [String: Any]]
                + snapshot.settings.extensions.map { ["name": $0.name, "label": $0.name, "selected": $0.name == catchAll] as [String: Any] },
            "errors": errors, "notice": notice(request, context),
        ]), request: request, context: context, status: status)
    }

    func saveCatchAll(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let form = try await Self.form(request)
        var settings = try await env.office.current().settings
        let name = form["catch_all"]?.first ?? ""
        settings.catchAll = name.isEmpty ? nil : name
        let result = try await env.office.save(settings, expectingVersion: Int(form["version"]?.first ?? "") ?? -1,
                                               action: "settings.catch_all", target: "catch_all", by: actor)
        return try await outcome(result, redirect: "/admin/extensions", context: context) { errors in
            try await extensions(request, context, errors: errors, status: .unprocessableContent)
        }
    }

    /// The form's fields for an extension (what the inputs show).
    static func fields(_ e: ExtensionConfig) -> [String: String] {
        var f: [String: String] = [
            "name": e.name, "numbers": e.numbers.joined(separator: ", "), "email": e.email.joined(separator: ", "),
            "language": e.language, "station_id": e.stationID ?? "", "headline": e.headline ?? "",
            "pdf_page_size": e.pdfPageSize, "ring_delay_seconds": String(e.ringDelaySeconds),
        ]
        for format in e.formats { f["format_" + format.lowercased()] = "1" }
        if e.fine { f["fine"] = "1" }
        let vm = e.voicemail ?? VoicemailConfig()
        if e.voicemail?.enabled == true { f["vm_enabled"] = "1" }
        f["vm_ring_delay_seconds"] = String(vm.ringDelaySeconds)
        f["vm_max_seconds"] = String(vm.maxSeconds)
        f["vm_silence_seconds"] = String(vm.silenceSeconds)
        if vm.attachWAV { f["vm_attach_wav"] = "1" }
        if vm.privacyNoticeOnly { f["vm_privacy_notice_only"] = "1" }
        if vm.faxOnTone { f["vm_fax_on_tone"] = "1" }
        f["vm_greeting"] = vm.greeting ?? ""
        return f
    }

    /// An extension from the form, over `base` (keys the form does not show stay as they were). Numbers that are
    /// not whole numbers are reported in `config check`'s words.
    static func extensionConfig(_ form: [String: [String]], base: ExtensionConfig?) -> (ExtensionConfig, [String]) {
        func one(_ key: String) -> String { (form[key]?.first ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
        var problems: [String] = []
        func int(_ key: String, _ path: String, _ fallback: Int) -> Int {
            let text = one(key)
            if text.isEmpty { return fallback }
            guard let n = Int(text) else { problems.append("\(path): expected a whole number"); return fallback }
            return n
        }
        // Decoding a constant, valid document cannot fail.
        var e = base ?? (try! YAMLishDefaults.extensionConfig(name: one("name")))
        if base == nil { e.name = one("name") }
        e.numbers = list(one("numbers"))
        e.email = list(one("email"))
        e.formats = ["pdf", "tiff"].filter { form["format_" + $0] != nil } + list(one("formats_other"))
        e.language = one("language")
        e.stationID = one("station_id").isEmpty ? nil : one("station_id")
        e.headline = one("headline").isEmpty ? nil : one("headline")
        e.pdfPageSize = one("pdf_page_size")
        e.fine = form["fine"] != nil
        e.ringDelaySeconds = int("ring_delay_seconds", "ring_delay_seconds", e.ringDelaySeconds)
        if form["vm_enabled"] != nil || e.voicemail != nil {
            var vm = e.voicemail ?? VoicemailConfig()
            vm.enabled = form["vm_enabled"] != nil
            vm.ringDelaySeconds = int("vm_ring_delay_seconds", "voicemail.ring_delay_seconds", vm.ringDelaySeconds)
            vm.maxSeconds = int("vm_max_seconds", "voicemail.max_seconds", vm.maxSeconds)
            vm.silenceSeconds = int("vm_silence_seconds", "voicemail.silence_seconds", vm.silenceSeconds)
            vm.attachWAV = form["vm_attach_wav"] != nil
            vm.privacyNoticeOnly = form["vm_privacy_notice_only"] != nil
            vm.faxOnTone = form["vm_fax_on_tone"] != nil
            if form["vm_builtin_greeting"] != nil { vm.greeting = nil }
            e.voicemail = vm
        }
        return (e, problems)
    }

    func editExtension(_ request: Request, _ context: WebContext, index: Int?, typed: [String: String]? = nil,
                       errors: [String] = [], status: HTTPResponse.Status = .ok) async throws -> Response {
        try requireAdmin(context, request: request)
        let snapshot = try await env.office.current()
        let ext: ExtensionConfig?
        if let index {
            guard index < snapshot.settings.extensions.count else { throw HTTPError(.notFound) }
            ext = snapshot.settings.extensions[index]
        } else {
            ext = nil
        }
        let f = typed ?? ext.map(Self.fields) ?? ["format_pdf": "1", "language": "de", "pdf_page_size": "a4", "fine": "1",
                                                  "ring_delay_seconds": "0", "vm_attach_wav": "1", "vm_fax_on_tone": "1",
                                                  "vm_ring_delay_seconds": "0", "vm_max_seconds": "60", "vm_silence_seconds": "5"]
        var v: [String: Any] = [
            "isNew": index == nil, "action": index.map { "/admin/extensions/\($0)" } ?? "/admin/extensions/new",
            "f": f, "errors": errors, "notice": notice(request, context),
            "languageDE": f["language"] == "de", "languageEN": f["language"] == "en",
            "pageA4": f["pdf_page_size"] != "exact", "pageExact": f["pdf_page_size"] == "exact",
            "formatPDF": f["format_pdf"] != nil, "formatTIFF": f["format_tiff"] != nil,
            "fine": f["fine"] != nil, "vmEnabled": f["vm_enabled"] != nil, "vmAttachWAV": f["vm_attach_wav"] != nil,
            "vmPrivacy": f["vm_privacy_notice_only"] != nil, "vmFaxOnTone": f["vm_fax_on_tone"] != nil,
        ]
        if let index, let ext {
            v["index"] = index
            v["hasVoicemail"] = ext.voicemail?.enabled == true
            v["greetingFile"] = ext.voicemail?.greeting ?? ""
        }
        return PageRenderer.shared.page("settings-extension", values(snapshot, v), request: request, context: context, status: status)
    }

    func saveExtension(_ request: Request, _ context: WebContext, index: Int?) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let form = try await Self.form(request)
        let snapshot = try await env.office.current()
        var settings = snapshot.settings
        let expecting = Int(form["version"]?.first ?? "") ?? -1
        let typed = form.mapValues { $0.first ?? "" }
        func again(_ errors: [String]) async throws -> Response {
            try await editExtension(request, context, index: index, typed: typed, errors: errors, status: .unprocessableContent)
        }
        let base: ExtensionConfig?
        if let index {
            // The index must still name the extension the form was made for.
            guard index < settings.extensions.count, settings.extensions[index].name == typed["name"] else {
                return try await again([Self.t("settings_changed_meanwhile", context)])
            }
            base = settings.extensions[index]
        } else {
            base = nil
        }
        let (ext, problems) = Self.extensionConfig(form, base: base)
        let prefix = "extensions[\(index ?? settings.extensions.count)]."
        if !problems.isEmpty { return try await again(problems.map { prefix + $0 }) }
        if let index { settings.extensions[index] = ext } else {
            if ext.name.isEmpty { return try await again([prefix + "name: " + Self.t("settings_name_required", context)]) }
            if settings.extensions.contains(where: { $0.name == ext.name }) {
                return try await again([prefix + "name: " + Self.t("settings_name_taken", context)])
            }
            settings.extensions.append(ext)
        }
        let result = try await env.office.save(settings, expectingVersion: expecting, action: index == nil ? "extension.add" : "extension.update",
                                               target: "extension \(ext.name)", by: actor)
        let target = index ?? settings.extensions.count - 1
        return try await outcome(result, redirect: "/admin/extensions/\(target)", context: context, again: again)
    }

    func removeExtension(_ request: Request, _ context: WebContext, index: Int) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let form = try await Self.form(request)
        var settings = try await env.office.current().settings
        guard index < settings.extensions.count, settings.extensions[index].name == form["name"]?.first else {
            return try await extensions(request, context, errors: [Self.t("settings_changed_meanwhile", context)], status: .conflict)
        }
        let name = settings.extensions.remove(at: index).name
        let result = try await env.office.save(settings, expectingVersion: Int(form["version"]?.first ?? "") ?? -1,
                                               action: "extension.remove", target: "extension \(name)", by: actor)
        return try await outcome(result, redirect: "/admin/extensions", context: context) { errors in
            try await extensions(request, context, errors: errors, status: .unprocessableContent)
        }
    }

    /// The greeting upload (multipart: csrf, version, name, greeting file): stored and converted once, then the
    /// extension's `voicemail.greeting` is saved like any other edit (validated, versioned, audited).
    func uploadGreeting(_ request: Request, _ context: WebContext, index: Int) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased().hasPrefix("multipart/form-data"), let boundary = WebSessionMiddleware.boundary(contentType) else {
            throw HTTPError(.unsupportedMediaType)
        }
        let limit = max(1, env.configuration().web.maxUploadMB) * 1024 * 1024
        func again(_ errors: [String]) async throws -> Response {
            try await editExtension(request, context, index: index, errors: errors, status: .unprocessableContent)
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: limit) } catch {
            return try await again([Self.t("settings_greeting_too_large", context)])
        }
        let parts = try SendPages.parts(body, boundary: boundary)
        func text(_ name: String) -> String { parts.first { $0.name == name && $0.filename == nil }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "" }
        guard let file = parts.first(where: { $0.name == "greeting" && !$0.bytes.isEmpty }) else {
            return try await again([Self.t("settings_greeting_missing", context)])
        }
        var settings = try await env.office.current().settings
        guard index < settings.extensions.count, settings.extensions[index].name == text("name") else {
            return try await again([Self.t("settings_changed_meanwhile", context)])
        }
        switch try await env.office.storeGreeting(file.bytes, fileName: file.filename ?? "greeting.wav", extensionName: settings.extensions[index].name) {
        case .refused(let why):
            return try await again([Self.t("settings_greeting_refused", context) + " " + why])
        case .stored(let path):
            var vm = settings.extensions[index].voicemail ?? VoicemailConfig()
            vm.greeting = path
            settings.extensions[index].voicemail = vm
            let result = try await env.office.save(settings, expectingVersion: Int(text("version")) ?? -1, action: "extension.greeting",
                                                   target: "extension \(settings.extensions[index].name)", by: actor)
            return try await outcome(result, redirect: "/admin/extensions/\(index)", context: context, again: again)
        }
    }

    func greeting(_ request: Request, _ context: WebContext, index: Int) async throws -> Response {
        try requireAdmin(context, request: request)
        let settings = try await env.office.current().settings
        guard index < settings.extensions.count,
              let wav = try await env.office.greetingWAV(extensionName: settings.extensions[index].name) else { throw HTTPError(.notFound) }
        var response = Response(status: .ok, headers: [.contentType: "audio/wav"], body: .init(byteBuffer: ByteBuffer(bytes: wav)))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    // MARK: - Senders

    func senders(_ request: Request, _ context: WebContext, errorsFor: (index: Int, errors: [String], typed: [String: String])? = nil,
                 status: HTTPResponse.Status = .ok) async throws -> Response {
        try requireAdmin(context, request: request)
        let snapshot = try await env.office.current()
        let rows: [[String: Any]] = snapshot.settings.extensions.enumerated().map { i, e in
            let s = e.senders
            let typed = errorsFor?.index == i ? errorsFor?.typed : nil
            let auth = typed?["require_authentication"] ?? s.requireAuthentication
            let intl = typed?["allow_international"] ?? s.allowInternational.map { $0 ? "yes" : "no" } ?? "default"
            let body = typed?["fax_body"] ?? s.faxBody.rawValue
            return [
                "index": i, "name": e.name,
                "allow": typed?["allow"] ?? s.allow.joined(separator: "\n"),
                "authOptions": ["dkim_or_spf", "dkim", "spf", "none"].map { ["value": $0, "selected": $0 == auth] as [String: Any] },
                "hasSecret": s.secret != nil,
                "callingNumber": typed?["calling_number"] ?? s.callingNumber ?? "",
                "hide": typed.map { $0["hide_calling_number"] != nil } ?? s.hideCallingNumber,
                "cover": typed.map { $0["cover_page"] != nil } ?? s.coverPage,
                "intlOptions": [("default", "settings_senders_intl_default"), ("yes", "settings_yes"), ("no", "settings_no")].map {
                    ["value": $0.0, "label": Self.t($0.1, context), "selected": $0.0 == intl] as [String: Any]
                },
                "bodyOptions": ["auto", "always", "never"].map { ["value": $0, "selected": $0 == body] as [String: Any] },
                "errors": errorsFor?.index == i ? errorsFor!.errors : [], "hasErrors": errorsFor?.index == i,
            ]
        }
        return PageRenderer.shared.page("settings-senders", values(snapshot, ["extensions": rows, "notice": notice(request, context)]),
                                        request: request, context: context, status: status)
    }

    func saveSenders(_ request: Request, _ context: WebContext, index: Int) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let form = try await Self.form(request)
        let typed = form.mapValues { $0.first ?? "" }
        var settings = try await env.office.current().settings
        func again(_ errors: [String]) async throws -> Response {
            try await senders(request, context, errorsFor: (index, errors, typed), status: .unprocessableContent)
        }
        guard index < settings.extensions.count, settings.extensions[index].name == typed["name"] else {
            return try await again([Self.t("settings_changed_meanwhile", context)])
        }
        var s = settings.extensions[index].senders
        s.allow = Self.list(typed["allow"])
        s.requireAuthentication = typed["require_authentication"] ?? s.requireAuthentication
        // A secret is never shown; it changes only when a new one is typed, or when removal is asked for.
        if typed["remove_secret"] != nil { s.secret = nil } else if let secret = typed["secret"], !secret.isEmpty { s.secret = secret }
        let calling = (typed["calling_number"] ?? "").trimmingCharacters(in: .whitespaces)
        s.callingNumber = calling.isEmpty ? nil : calling
        s.hideCallingNumber = typed["hide_calling_number"] != nil
        s.coverPage = typed["cover_page"] != nil
        switch typed["allow_international"] {
        case "yes": s.allowInternational = true
        case "no": s.allowInternational = false
        default: s.allowInternational = nil
        }
        guard let body = SenderConfig.FaxBody(rawValue: typed["fax_body"] ?? "auto") else {
            return try await again(["extensions[\(index)].senders.fax_body: must be auto, always or never"])
        }
        s.faxBody = body
        settings.extensions[index].senders = s
        let result = try await env.office.save(settings, expectingVersion: Int(typed["version"] ?? "") ?? -1, action: "senders.update",
                                               target: "extension \(settings.extensions[index].name)", by: actor)
        return try await outcome(result, redirect: "/admin/senders", context: context, again: again)
    }

    // MARK: - Dial policy

    func policy(_ request: Request, _ context: WebContext, typed: [String: String]? = nil, errors: [String] = [],
                status: HTTPResponse.Status = .ok) async throws -> Response {
        try requireAdmin(context, request: request)
        let snapshot = try await env.office.current()
        let p = snapshot.settings.policy
        return PageRenderer.shared.page("settings-policy", values(snapshot, [
            "deny": typed?["deny_prefixes"] ?? p.denyPrefixes.joined(separator: "\n"),
            "international": typed.map { $0["allow_international"] != nil } ?? p.allowInternational,
            "maxJobs": typed?["max_jobs"] ?? String(p.maxJobsPerSenderPerDay),
            "maxPages": typed?["max_pages"] ?? String(p.maxPagesPerSenderPerDay),
            "errors": errors, "notice": notice(request, context),
        ]), request: request, context: context, status: status)
    }

    func savePolicy(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let typed = try await Self.form(request).mapValues { $0.first ?? "" }
        func again(_ errors: [String]) async throws -> Response {
            try await policy(request, context, typed: typed, errors: errors, status: .unprocessableContent)
        }
        var settings = try await env.office.current().settings
        var problems: [String] = []
        func int(_ key: String, _ path: String) -> Int? {
            guard let n = Int((typed[key] ?? "").trimmingCharacters(in: .whitespaces)) else {
                problems.append("outgoing.policy.\(path): expected a whole number"); return nil
            }
            return n
        }
        let jobs = int("max_jobs", "max_jobs_per_sender_per_day"), pages = int("max_pages", "max_pages_per_sender_per_day")
        guard let jobs, let pages else { return try await again(problems) }
        settings.policy.denyPrefixes = Self.list(typed["deny_prefixes"])
        settings.policy.allowInternational = typed["allow_international"] != nil
        settings.policy.maxJobsPerSenderPerDay = jobs
        settings.policy.maxPagesPerSenderPerDay = pages
        let result = try await env.office.save(settings, expectingVersion: Int(typed["version"] ?? "") ?? -1, action: "policy.update",
                                               target: "dial policy", by: actor)
        return try await outcome(result, redirect: "/admin/policy", context: context, again: again)
    }

    // MARK: - Retention days and legal holds

    func retention(_ request: Request, _ context: WebContext, typed: [String: String]? = nil, errors: [String] = [],
                   status: HTTPResponse.Status = .ok) async throws -> Response {
        try requireAdmin(context, request: request)
        let snapshot = try await env.office.current()
        let days = snapshot.settings.retentionDays
        let rows: [[String: Any]] = RetentionSettings.categories.map { c in
            [
                "key": c.key, "what": c.what, "default": c.defaultDays,
                "value": typed?["days_" + c.key] ?? days[c.key].map(String.init) ?? "",
            ]
        }
        return PageRenderer.shared.page("settings-retention", values(snapshot, [
            "categories": rows, "holds": snapshot.settings.legalHolds.enumerated().map { ["index": $0, "subject": $1] as [String: Any] },
            "newHold": typed?["hold"] ?? "", "errors": errors, "notice": notice(request, context),
        ]), request: request, context: context, status: status)
    }

    func saveRetention(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let typed = try await Self.form(request).mapValues { $0.first ?? "" }
        func again(_ errors: [String]) async throws -> Response {
            try await retention(request, context, typed: typed, errors: errors, status: .unprocessableContent)
        }
        var settings = try await env.office.current().settings
        var days: [String: Int] = [:]
        var problems: [String] = []
        for c in RetentionSettings.categories {
            let text = (typed["days_" + c.key] ?? "").trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }  // empty = the default
            guard let n = Int(text) else { problems.append("retention.days.\(c.key): expected a whole number"); continue }
            days[c.key] = n
        }
        if !problems.isEmpty { return try await again(problems) }
        settings.retentionDays = days
        let result = try await env.office.save(settings, expectingVersion: Int(typed["version"] ?? "") ?? -1, action: "retention.update",
                                               target: "retention days", by: actor)
        return try await outcome(result, redirect: "/admin/retention", context: context, again: again)
    }

    /// Adds (`hold`) or removes (`remove` = the subject) one configured legal hold.
    func saveHolds(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        guard let actor = context.actor else { throw HTTPError(.unauthorized) }
        let typed = try await Self.form(request).mapValues { $0.first ?? "" }
        func again(_ errors: [String]) async throws -> Response {
            try await retention(request, context, typed: typed, errors: errors, status: .unprocessableContent)
        }
        var settings = try await env.office.current().settings
        if let remove = typed["remove"] {
            guard settings.legalHolds.contains(remove) else { return try await again([Self.t("settings_changed_meanwhile", context)]) }
            settings.legalHolds.removeAll { $0 == remove }
        } else {
            let hold = (typed["hold"] ?? "").trimmingCharacters(in: .whitespaces)
            guard !hold.isEmpty else { return try await again(["privacy.legal_holds: " + Self.t("settings_hold_empty", context)]) }
            if !settings.legalHolds.contains(hold) { settings.legalHolds.append(hold) }
        }
        let result = try await env.office.save(settings, expectingVersion: Int(typed["version"] ?? "") ?? -1, action: "legal_hold.update",
                                               target: "legal holds", by: actor)
        return try await outcome(result, redirect: "/admin/retention", context: context, again: again)
    }
}

/// A new extension's defaults are those of a file that names only its name, numbers and address: decoded,
/// not repeated here.
enum YAMLishDefaults {
    static func extensionConfig(name: String) throws -> ExtensionConfig {
        let json = #"{"name": "", "numbers": [], "email": []}"#
        var e = try JSONDecoder().decode(ExtensionConfig.self, from: Data(json.utf8))
        e.name = name
        return e
    }
}
