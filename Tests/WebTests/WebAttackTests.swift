@testable import FaxgateApp
@testable import FaxgateCore
@testable import FaxgateWeb
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SQLiteStorage
import TestSupport
import XCTest

/// An attacker's tour of the web pages over real HTTP (Hummingbird's live server on loopback, the real router and
/// middleware) with the real SQLite storage: every registered route without a session, without a CSRF token, as a
/// non-admin and as an admin whose second factor is not verified; other users' items by id; markup and control
/// characters stored in the journal; open redirects; static path traversal; session end on disable and password
/// change; uploads; lockout bounds and login timing; the monitoring endpoints behind a proxy.
final class WebAttackTests: XCTestCase {
    typealias Browser = WebSecurityTests.Browser

    /// Every route the router registers and who may use it. A route the router has and this list lacks fails
    /// `testEveryRegisteredRouteIsInTheList`, so a new page cannot escape the checks below.
    enum Access { case open, probe, user, admin }
    static let routes: [String: Access] = [
        "GET /": .user, "GET /login": .open, "POST /login": .open, "GET /login/totp": .open, "POST /login/totp": .open,
        "POST /logout": .open, "GET /account": .user, "GET /account/password": .user, "POST /account/password": .user,
        "GET /account/totp": .user, "POST /account/totp": .user, "POST /account/totp/disable": .user,
        "POST /account/language": .user, "POST /account/logout-everywhere": .user, "GET /language/{lang}": .open,
        "GET /static/{name}": .open, "GET /metrics": .probe, "GET /health/live": .probe, "GET /health/ready": .probe,
        "GET /inbox": .user, "GET /inbox/{id}": .user, "GET /inbox/{id}/document.pdf": .user, "GET /inbox/{id}/page/{page}": .user,
        "GET /inbox/{id}/audio.wav": .user, "POST /inbox/{id}/read": .user,
        "GET /sent": .user, "GET /sent/{id}": .user, "GET /sent/{id}/report.pdf": .user, "POST /sent/{id}/cancel": .user,
        "POST /sent/{id}/resend": .user, "GET /send": .user, "POST /send": .user, "GET /send/{id}": .user,
        "GET /admin": .admin, "GET /admin/journal": .admin, "GET /admin/calls/{id}": .admin,
        "GET /admin/calls/{id}/documents/{n}": .admin, "POST /admin/calls/{id}/resend-mail": .admin, "GET /admin/jobs/{id}": .admin,
        "GET /admin/queue": .admin, "POST /admin/jobs/{id}/cancel": .admin, "POST /admin/jobs/{id}/retry": .admin,
        "POST /admin/jobs/{id}/resend": .admin, "GET /admin/users": .admin, "POST /admin/users": .admin,
        "POST /admin/users/{id}/{action}": .admin, "GET /admin/audit": .admin, "GET /admin/logs": .admin,
        "GET /admin/privacy": .admin, "GET /admin/privacy/record": .admin, "GET /admin/privacy/record.md": .admin,
        "GET /admin/privacy/record.json": .admin, "GET /admin/privacy/subject": .admin, "POST /admin/privacy/subject/export": .admin,
        "GET /admin/privacy/subject/export/{token}": .admin, "POST /admin/privacy/subject/erase": .admin,
        "GET /admin/privacy/holds": .admin, "POST /admin/privacy/holds": .admin, "POST /admin/privacy/holds/release": .admin,
        "GET /admin/privacy/snapshots": .admin, "POST /admin/privacy/snapshots": .admin,
        "GET /admin/privacy/snapshots/{name}/download": .admin, "POST /admin/privacy/snapshots/{name}/delete": .admin,
        "GET /admin/privacy/retention": .admin, "POST /admin/privacy/retention/preview": .admin, "POST /admin/privacy/retention/run": .admin,
        "GET /admin/extensions": .admin, "POST /admin/extensions/catch-all": .admin, "GET /admin/extensions/new": .admin,
        "POST /admin/extensions/new": .admin, "GET /admin/extensions/{index}": .admin, "POST /admin/extensions/{index}": .admin,
        "POST /admin/extensions/{index}/remove": .admin, "POST /admin/extensions/{index}/greeting": .admin,
        "GET /admin/extensions/{index}/greeting.wav": .admin, "GET /admin/senders": .admin, "POST /admin/senders/{index}": .admin,
        "GET /admin/policy": .admin, "POST /admin/policy": .admin, "GET /admin/retention": .admin, "POST /admin/retention": .admin,
        "POST /admin/retention/holds": .admin,
    ]

    /// Markup, template syntax, header breakers and bidi overrides, as a caller or a mail sender could send them.
    static let evil = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>{{csrf}}\r\nX-Injected: 1\u{202E}fdp.exe"

    final class Fixture: @unchecked Sendable {
        let dir: TemporaryDirectory
        let spool: String
        let storage: SQLiteStorage
        var config: Configuration
        let web: WebSettings
        let jobs = RecordingJobs()
        var anna: WebUser!, bert: WebUser!, admin: WebUser!

        init(web: WebSettings = WebSettings()) async throws {
            dir = try TemporaryDirectory("web-attack")
            spool = dir.path + "/spool"
            try FileManager.default.createDirectory(atPath: spool + "/incoming", withIntermediateDirectories: true)
            let path = dir.path + "/faxgate.yaml"
            try """
                spool_directory: \(spool)
                smtp: {host: localhost, port: 25, security: none}
                mail: {from: fax@example.com}
                extensions:
                  - {name: Empfang, numbers: ["100"], email: [empfang@example.com]}
                  - {name: Labor, numbers: ["200"], email: [labor@example.com]}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            config = try ConfigLoader.load(path: path)
            var web = web
            web.lockoutThreshold = 3
            config.web = web
            self.web = web
            storage = try SQLiteStorage(path: spool + "/faxgate.sqlite")
            try await storage.migrate()
            let hash = try await Passwords.hash(WebSecurityTests.password)
            anna = try await storage.insertUser(WebUser(name: "anna", role: .user, extensions: ["Empfang"], passwordHash: hash, mustChangePassword: false))
            bert = try await storage.insertUser(WebUser(name: "bert", role: .user, extensions: ["Labor", WebAttackTests.evil],
                                                        passwordHash: hash, mustChangePassword: false))
            admin = try await storage.insertUser(WebUser(name: "root", role: .admin, extensions: [], passwordHash: hash,
                                                         mustChangePassword: false, totpSecret: Array("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".utf8)))
        }

        /// A session as the login pages leave it; the cookie header value and its CSRF token.
        func session(_ user: WebUser, verified: Bool = true) async throws -> (cookie: String, csrf: String) {
            let id = WebSessions.randomToken(), csrf = WebSessions.randomToken()
            try await storage.insertSession(WebSession(idHash: WebSessions.hash(id), userID: user.id!, createdAt: Date(), lastSeenAt: Date(),
                                                       secondFactorVerified: verified, csrfToken: csrf, clientAddress: "127.0.0.1"))
            return ("\(WebCookies.session)=\(id)", csrf)
        }

        var environment: WebEnvironment {
            var logger = Logger(label: "faxgate.web")
            logger.logLevel = .critical
            let config = self.config, storage = self.storage
            return WebEnvironment(
                storage: storage, configuration: { config }, jobs: jobs, office: AdminPagesOnly(),
                privacy: WebPrivacyOperations(configuration: { config }, configPath: dir.path + "/faxgate.yaml", storage: storage, logger: logger),
                status: jobs, logger: logger,
                admin: WebAdminOperations(pipeline: nil, queue: nil, storage: storage, configuration: { config }))
        }

        func router() -> Router<WebContext> { WebServer(environment: environment, settings: web).router() }

        func application() throws -> some ApplicationProtocol {
            try WebServer(environment: environment, settings: web).application(router: router())
        }

        /// A received fax (with its PDF and a page file) or voicemail of `ext`.
        func call(ext: String, kind: CallRecord.Kind = .fax, station: String? = nil, document: String = "fax.pdf") async throws -> Int64 {
            var c = CallRecord(kind: kind, state: .receiving, startedAt: Date(), callingNumber: "301112223", calledNumber: "200", extensionName: ext)
            c = try await storage.insertCall(c, event: "incoming call")
            c.spoolPath = "\(spool)/incoming/\(c.id!).sff"
            try Data("not really sff".utf8).write(to: URL(fileURLWithPath: c.spoolPath!))
            c.state = .mailed
            c.outcome = .complete
            c.remoteStationID = station
            try await storage.updateCall(c, event: "mailed")
            try await storage.putDocument(StoredDocument(callID: c.id!, kind: "pdf", filename: document, bytes: Array("%PDF-1.4 secret of \(ext)".utf8)))
            return c.id!
        }

        func job(ext: String, state: FaxJob.State = .ready, subject: String = "test", senderName: String? = nil, sender: String = "bert@example.com") async throws -> Int64 {
            var j = FaxJob(state: .ready, createdAt: Date(), intakeID: nil, sender: sender, senderName: senderName, extensionName: ext,
                           language: "en", number: "+49301234567", dialString: "0301234567", subject: subject, pages: 1, fine: true,
                           sffPath: spool + "/none.sff", requestMessageID: nil)
            j = try await storage.insertJobs([j], intake: nil, event: "test job").first!
            if state != .ready {
                var moved = j
                moved.state = state
                try await storage.updateJob(moved, expecting: .ready, event: "test state")
            }
            return j.id!
        }

        /// Everything an action could change: users, sessions' users, audit trail, jobs, read marks, spool files.
        func state() async throws -> String {
            var out: [String] = []
            for u in try await storage.users() {
                out.append("user \(u.id!) \(u.name) \(u.role) \(u.extensions) \(u.disabled) \(u.passwordHash) \(u.totpSecret ?? []) \(u.language ?? "-") \(u.mustChangePassword)")
            }
            out.append("audit \(try await storage.auditEntries(limit: 100_000, beforeID: nil, actor: nil, action: nil).count)")
            for j in try await storage.searchJobs(JobQuery(limit: 10_000)) { out.append("job \(j.id!) \(j.state)") }
            let calls = try await storage.searchCalls(CallQuery(limit: 10_000))
            for u in try await storage.users() {
                out.append("read \(u.id!) \(try await storage.readCallIDs(userID: u.id!, among: calls.compactMap(\.id)).sorted())")
            }
            let files = FileManager.default.enumerator(atPath: dir.path)?.allObjects.compactMap { $0 as? String }.filter { !$0.contains("sqlite") } ?? []
            out.append("files \(files.sorted())")
            out.append("ops \(jobs.calls)")
            return out.joined(separator: "\n")
        }
    }

    // MARK: Requests

    static func get(_ client: some TestClientProtocol, _ path: String, cookie: String? = nil, html: Bool = false,
                    headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var h: HTTPFields = [.acceptLanguage: "en"]
        if let cookie { h[.cookie] = cookie }
        if html { h[.accept] = "text/html" }
        for f in extra { h[f.name] = f.value }
        return try await client.execute(uri: path, method: .get, headers: h)
    }

    static func post(_ client: some TestClientProtocol, _ path: String, cookie: String? = nil, _ fields: [(String, String)]) async throws -> TestResponse {
        let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        var h: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .acceptLanguage: "en"]
        if let cookie { h[.cookie] = cookie }
        return try await client.execute(uri: path, method: .post, headers: h, body: ByteBuffer(string: body))
    }

    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }
    static func location(_ r: TestResponse) -> String { r.headers[.location] ?? "" }
    static func withoutBack(_ html: String) -> String { html.replacing(/\?back=[^"]*"/, with: "\"") }

    /// A concrete URL for a route pattern (ids of existing items, so a refusal is not a mere "not found").
    static func concrete(_ pattern: String, id: Int64) -> String {
        pattern.replacingOccurrences(of: "{id}", with: "\(id)").replacingOccurrences(of: "{n}", with: "0")
            .replacingOccurrences(of: "{page}", with: "1").replacingOccurrences(of: "{action}", with: "disable")
            .replacingOccurrences(of: "{index}", with: "0").replacingOccurrences(of: "{name}", with: "snap")
            .replacingOccurrences(of: "{token}", with: "tok").replacingOccurrences(of: "{lang}", with: "de")
    }

    // MARK: Routes

    func testEveryRegisteredRouteIsInTheList() async throws {
        let f = try await Fixture()
        let registered = Set(f.router().routes.map { "\($0.method) \($0.path)" })
        XCTAssertEqual(registered.subtracting(Self.routes.keys).sorted(), [], "routes without an access rule in WebAttackTests.routes")
        XCTAssertEqual(Set(Self.routes.keys).subtracting(registered).sorted(), [], "listed routes the router no longer has")
    }

    /// Without a session: every page and document redirects to /login (or is refused); every POST without a token
    /// is 403 and changes nothing.
    func testEveryRouteWithoutSessionOrToken() async throws {
        let f = try await Fixture()
        let call = try await f.call(ext: "Labor")
        _ = try await f.job(ext: "Labor", state: .done)
        let before = try await f.state()
        try await f.application().test(.live) { client in
            for (route, access) in Self.routes.sorted(by: { $0.key < $1.key }) {
                let parts = route.split(separator: " ", maxSplits: 1)
                let path = Self.concrete(String(parts[1]), id: call)
                if parts[0] == "GET" {
                    let r = try await Self.get(client, path)
                    switch access {
                    case .user, .admin:
                        XCTAssertTrue(r.status == .seeOther && Self.location(r).hasPrefix("/login") || [.unauthorized, .forbidden].contains(r.status),
                                      "\(route): \(r.status) \(Self.location(r))")
                        XCTAssertFalse(Self.text(r).contains("secret of"), route)
                    case .open, .probe: break   // the login page, static files, language switch; probes: testProbes
                    }
                    if path == "/login/totp" {
                        XCTAssertEqual(Self.location(r), "/login", "the second-factor page needs the password step first")
                    }
                } else {
                    // No session, no token.
                    var r = try await Self.post(client, path, [("name", "root"), ("password", WebSecurityTests.password)])
                    XCTAssertEqual(r.status, .forbidden, "\(route) without token")
                    // A session of each kind, but no token (or a wrong one).
                    for user in [f.anna!, f.admin!] {
                        let s = try await f.session(user)
                        // A token of the right length that differs in its first character (never equal by chance).
                        let wrong = (s.csrf.first == "A" ? "B" : "A") + s.csrf.dropFirst()
                        r = try await Self.post(client, path, cookie: s.cookie, [("csrf", wrong)])
                        XCTAssertEqual(r.status, .forbidden, "\(route) as \(user.name) with a wrong token")
                        r = try await Self.post(client, path, cookie: s.cookie, [])
                        XCTAssertEqual(r.status, .forbidden, "\(route) as \(user.name) without token")
                    }
                }
            }
        }
        let after = try await f.state()
        XCTAssertEqual(before, after, "a refused request changed something")
    }

    /// A logged-in non-admin, and an admin whose session has not verified the second factor: no admin page, no
    /// admin action (with a valid token), nothing changed.
    func testAdminRoutesRefuseUsersAndUnverifiedAdmins() async throws {
        let f = try await Fixture()
        let call = try await f.call(ext: "Labor")
        let before = try await f.state()
        try await f.application().test(.live) { client in
            let user = try await f.session(f.anna)
            let halfAdmin = try await f.session(f.admin, verified: false)
            for (route, access) in Self.routes.sorted(by: { $0.key < $1.key }) where access == .admin {
                let parts = route.split(separator: " ", maxSplits: 1)
                let path = Self.concrete(String(parts[1]), id: call)
                for (who, s) in [("user", user), ("unverified admin", halfAdmin)] {
                    let r = parts[0] == "GET" ? try await Self.get(client, path, cookie: s.cookie)
                                              : try await Self.post(client, path, cookie: s.cookie, [("csrf", s.csrf), ("name", "mallory"), ("role", "admin")])
                    if who == "user" {
                        XCTAssertTrue([.forbidden, .notFound].contains(r.status), "\(route) as \(who): \(r.status)")
                    } else {
                        // Sent to the second-factor step, or refused.
                        XCTAssertTrue([.forbidden, .notFound].contains(r.status) || (r.status == .seeOther && Self.location(r).hasPrefix("/login/totp")),
                                      "\(route) as \(who): \(r.status) \(Self.location(r))")
                    }
                    XCTAssertFalse(Self.text(r).contains("secret of"), route)
                }
            }
        }
        let after = try await f.state()
        XCTAssertEqual(before, after)
    }

    // MARK: IDOR

    /// Anna (extension Empfang) against Bert's (Labor) call, voicemail, document, page, send report, job, submission:
    /// the same 404 as an id that does not exist, and malformed ids alike. Nothing is done to Bert's items.
    func testOtherUsersItemsAnswer404LikeMissingOnes() async throws {
        let f = try await Fixture()
        let fax = try await f.call(ext: "Labor")
        let voice = try await f.call(ext: "Labor", kind: .voice)
        let done = try await f.job(ext: "Labor", state: .done)
        let ready = try await f.job(ext: "Labor")
        f.jobs.submissionOwner = ("Labor", 4242)
        try await f.application().test(.live) { client in
            let anna = try await f.session(f.anna), bert = try await f.session(f.bert)
            // Bert sees his own: the ids are real.
            let own = try await Self.get(client, "/inbox/\(fax)", cookie: bert.cookie)
            XCTAssertEqual(own.status, .ok)
            let ownPDF = try await Self.get(client, "/inbox/\(fax)/document.pdf", cookie: bert.cookie)
            XCTAssertTrue(Self.text(ownPDF).contains("secret of Labor"))
            let ownJob = try await Self.get(client, "/sent/\(done)", cookie: bert.cookie)
            XCTAssertEqual(ownJob.status, .ok)
            let ownSubmission = try await Self.get(client, "/send/4242", cookie: bert.cookie)
            XCTAssertEqual(ownSubmission.status, .ok)
            // From here on only Anna asks (Bert's own opening marked his fax read).
            let before = try await f.state()

            let gets = ["/inbox/\(fax)", "/inbox/\(fax)/document.pdf", "/inbox/\(fax)/page/1", "/inbox/\(fax)/page/1.png",
                        "/inbox/\(voice)/audio.wav", "/inbox/\(voice)", "/sent/\(done)", "/sent/\(done)/report.pdf", "/sent/\(ready)", "/send/4242"]
            let posts = ["/inbox/\(fax)/read", "/sent/\(ready)/cancel", "/sent/\(done)/resend"]
            let missing = ["999999", "0", "-1", "-9223372036854775808", "9223372036854775807", "99999999999999999999999", "abc", "1.0",
                           "%00", "1%20", "0x1", "%2e%2e"]
            for html in [false, true] {
                // The answer for an id that does not exist: the pattern with a missing id.
                for path in gets {
                    let r = try await Self.get(client, path, cookie: anna.cookie, html: html)
                    XCTAssertEqual(r.status, .notFound, path)
                    XCTAssertFalse(Self.text(r).contains("secret of"), path)
                    let ids = path.split(separator: "/")
                    for id in missing {
                        let other = "/" + ([ids[0], Substring(id)] + ids.dropFirst(2)).joined(separator: "/")
                        let m = try await Self.get(client, other, cookie: anna.cookie, html: html)
                        XCTAssertEqual(m.status, r.status, "\(other) answers unlike \(path)")
                        // The layout's language switch names the page's own path; the rest must be the same.
                        XCTAssertEqual(Self.withoutBack(Self.text(m)), Self.withoutBack(Self.text(r)), "\(other) reads unlike \(path)")
                    }
                }
            }
            for path in posts {
                let r = try await Self.post(client, path, cookie: anna.cookie, [("csrf", anna.csrf)])
                XCTAssertEqual(r.status, .notFound, path)
                let ids = path.split(separator: "/")
                for id in missing {
                    let other = "/" + ([ids[0], Substring(id)] + ids.dropFirst(2)).joined(separator: "/")
                    let m = try await Self.post(client, other, cookie: anna.cookie, [("csrf", anna.csrf)])
                    XCTAssertEqual(m.status, r.status, other)
                    XCTAssertEqual(Self.text(m), Self.text(r), other)
                }
            }
            // Lists show none of Bert's either.
            for path in ["/inbox", "/sent", "/inbox?q=301112223", "/sent?state=done"] {
                let r = try await Self.get(client, path, cookie: anna.cookie)
                XCTAssertFalse(Self.text(r).contains("/inbox/\(fax)\""), path)
                XCTAssertFalse(Self.text(r).contains("/sent/\(done)\""), path)
            }
            let after = try await f.state()
            XCTAssertEqual(before, after, "Anna's requests changed Bert's items")
        }
        XCTAssertTrue(f.jobs.calls.isEmpty, "cancel/resend reached the queue: \(f.jobs.calls)")
    }

    // MARK: Injection

    /// Markup, template syntax, CR/LF and bidi overrides in a station id, Subject, sender, attachment name and
    /// extension name come out escaped on every page that shows them, and a download name cannot break its header.
    func testStoredMarkupIsEscapedEverywhereAndNamesCannotBreakHeaders() async throws {
        let f = try await Fixture()
        let evil = Self.evil
        let fax = try await f.call(ext: evil, station: evil, document: evil + ".pdf")
        let labor = try await f.call(ext: "Labor", station: evil, document: "\"; filename*=UTF-8''x.exe\r\nSet-Cookie: a=b.pdf")
        let job = try await f.job(ext: "Labor", state: .done, subject: evil, senderName: evil, sender: evil)
        try await f.storage.appendAudit(AuditEntry(actor: "root", clientAddress: "127.0.0.1", action: "test.evil", target: evil, detail: evil))
        try await f.application().test(.live) { client in
            let bert = try await f.session(f.bert), admin = try await f.session(f.admin)
            let pages: [(String, String)] = [
                ("/inbox", bert.cookie), ("/inbox/\(fax)", bert.cookie), ("/inbox/\(labor)", bert.cookie), ("/sent", bert.cookie),
                ("/sent/\(job)", bert.cookie), ("/account", bert.cookie), ("/send", bert.cookie),
                ("/admin/journal", admin.cookie), ("/admin/calls/\(fax)", admin.cookie), ("/admin/calls/\(labor)", admin.cookie),
                ("/admin/jobs/\(job)", admin.cookie), ("/admin/queue", admin.cookie), ("/admin/users", admin.cookie),
                ("/admin/audit", admin.cookie), ("/inbox?q=" + evil.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, bert.cookie),
                ("/sent?q=" + evil.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, bert.cookie),
                ("/admin/journal?q=" + evil.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, admin.cookie),
            ]
            var shown = 0
            for (path, cookie) in pages {
                let r = try await Self.get(client, path, cookie: cookie)
                XCTAssertEqual(r.status, .ok, path)
                let html = Self.text(r)
                XCTAssertFalse(html.contains("<script>alert"), "\(path) shows raw <script>")
                XCTAssertFalse(html.contains("<img src=x"), "\(path) shows a raw <img>")
                XCTAssertFalse(html.contains("\"><img"), "\(path) lets a quote end an attribute")
                XCTAssertFalse(html.unicodeScalars.contains { (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value) },
                               "\(path) passes a bidi control through")
                XCTAssertFalse(html.contains(bert.csrf) && html.components(separatedBy: bert.csrf).count > 2 && html.contains("{{csrf}}") == false
                               && path.hasPrefix("/admin"), "\(path) rendered a stored {{csrf}} as the token")
                if html.contains("&lt;script&gt;alert") { shown += 1 }
            }
            XCTAssertGreaterThanOrEqual(shown, 8, "the marker is shown (escaped) on the pages that show these fields")

            for (path, cookie) in [("/inbox/\(fax)/document.pdf", bert.cookie), ("/inbox/\(labor)/document.pdf", bert.cookie),
                                   ("/admin/calls/\(fax)/documents/0", admin.cookie), ("/admin/calls/\(labor)/documents/0", admin.cookie),
                                   ("/sent/\(job)/report.pdf", bert.cookie)] {
                let r = try await Self.get(client, path, cookie: cookie)
                let dispositions = r.headers[values: .contentDisposition]
                XCTAssertEqual(dispositions.count, 1, path)
                let d = dispositions.first ?? ""
                XCTAssertTrue(d.allSatisfy { $0.isASCII && !$0.isNewline && $0 != "\u{0}" }, "\(path): \(d.debugDescription)")
                // attachment; filename="<no quote, backslash, semicolon inside>"
                let m = d.wholeMatch(of: /attachment; filename="([A-Za-z0-9._-]+)"/)
                XCTAssertNotNil(m, "\(path): \(d)")
                XCTAssertTrue(r.headers[values: .setCookie].allSatisfy { !$0.hasPrefix("a=") }, path)
                XCTAssertNil(r.headers[HTTPField.Name("X-Injected")!], path)
            }
        }
    }

    // MARK: Open redirect

    func testLoginNextStaysOnThisHost() async throws {
        let f = try await Fixture()
        try await f.application().test(.live) { client in
            let targets = ["//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example", "/%09/evil.example",
                           "/\t/evil.example", "/%5Cevil.example", "/ /evil.example", "%2F%2Fevil.example", "/\r\nLocation: //evil.example",
                           "javascript:alert(1)", "/.//evil.example", "///evil.example", "/\u{0B}/evil.example"]
            for target in targets {
                let query = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                // Logged in already: the login page sends on to `next` at once.
                let s = try await f.session(f.anna)
                let r = try await Self.get(client, "/login?next=" + query, cookie: s.cookie)
                Self.assertLocal(r, target)
                // The password step with `next` in the form.
                let b = Browser(client)
                let token = try await b.csrf(on: "/login?next=" + query)
                let login = try await b.post("/login", [("csrf", token), ("name", "anna"), ("password", WebSecurityTests.password), ("next", target)])
                Self.assertLocal(login, target)
                // The language switch's `back`.
                let lang = try await Self.get(client, "/language/de?back=" + query)
                Self.assertLocal(lang, target)
            }
        }
    }

    /// A Location a browser resolves against this host only: a path, without what browsers strip or turn into `/`.
    static func assertLocal(_ r: TestResponse, _ target: String, file: StaticString = #filePath, line: UInt = #line) {
        let location = Self.location(r)
        XCTAssertEqual(r.status, .seeOther, "next=\(target.debugDescription)", file: file, line: line)
        // The URL parser of browsers (WHATWG): leading/trailing C0 controls and spaces trimmed, tab/CR/LF removed
        // everywhere, `\` read as `/`; what is left must be a path, not `//host` or a scheme.
        let trimmed = location.trimmingCharacters(in: CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(0x20)))
        let browser = String(trimmed.unicodeScalars.filter { ![0x09, 0x0A, 0x0D].contains($0.value) }.map { $0 == "\\" ? "/" : Character($0) })
        XCTAssertTrue(browser.hasPrefix("/") && !browser.hasPrefix("//"), "next=\(target.debugDescription) → \(location.debugDescription)",
                      file: file, line: line)
    }

    // MARK: Static files

    func testStaticPathTraversal() async throws {
        let f = try await Fixture()
        try await f.application().test(.live) { client in
            let css = try await Self.get(client, "/static/faxgate.css")
            XCTAssertEqual(css.status, .ok)
            for path in ["/static/../Package.swift", "/static/%2e%2e/Package.swift", "/static/%2e%2e%2fPackage.swift", "/static/..%2f..%2fPackage.swift",
                         "/static/faxgate.css%00", "/static/faxgate.css%00.png", "/static/%2e%2e%2f%2e%2e%2fTemplates%2flayout.mustache",
                         "/static/..%5c..%5cPackage.swift", "/static/", "/static/.", "/static/%2e", "/static//etc/passwd",
                         "/static/faxgate.CSS", "/static/faxgate.css/", "/static/..", "/static/../../../../etc/passwd"] {
                let r = try await Self.get(client, path)
                XCTAssertTrue(r.status == .notFound || (r.status == .ok && Self.text(r) == Self.text(css) && path == "/static/faxgate.css/"),
                              "\(path): \(r.status)")
                XCTAssertFalse(Self.text(r).contains("swift-tools-version"), path)
                XCTAssertFalse(Self.text(r).contains("root:"), path)
            }
        }
    }

    // MARK: Sessions

    func testSessionsEndOnDisableAndPasswordChange_andOnlyTheCookieCounts() async throws {
        let f = try await Fixture()
        try await f.application().test(.live) { client in
            // Disabled: the open session stops at the next request.
            let s = try await f.session(f.anna)
            let ok = try await Self.get(client, "/inbox", cookie: s.cookie)
            XCTAssertEqual(ok.status, .ok)
            var anna = try await f.storage.user(id: f.anna.id!)!
            anna.disabled = true
            try await f.storage.updateUser(anna)
            let gone = try await Self.get(client, "/inbox", cookie: s.cookie)
            XCTAssertEqual(gone.status, .seeOther)
            XCTAssertTrue(Self.location(gone).hasPrefix("/login"))
            let stored = try await f.storage.session(idHash: WebSessions.hash(String(s.cookie.dropFirst(WebCookies.session.count + 1))))
            XCTAssertNil(stored, "the disabled user's session row is deleted")

            // A password change ends the user's other sessions (decided: it should) and keeps the changing one.
            let one = Browser(client), two = Browser(client)
            let r1 = try await one.login("bert"), r2 = try await two.login("bert")
            XCTAssertEqual(r1.status, .seeOther)
            XCTAssertEqual(r2.status, .seeOther)
            // Cookie flags of the session cookie.
            let setCookie = r1.headers[values: .setCookie].first { $0.hasPrefix(WebCookies.session + "=") } ?? ""
            XCTAssertTrue(setCookie.contains("HttpOnly"), setCookie)
            XCTAssertTrue(setCookie.contains("SameSite=Strict"), setCookie)
            XCTAssertTrue(setCookie.contains("Path=/"), setCookie)
            XCTAssertFalse(setCookie.contains("Domain="), setCookie)
            let twoBefore = try await two.get("/inbox")
            XCTAssertEqual(twoBefore.status, .ok)
            let token = try await one.csrf(on: "/account/password")
            let changed = try await one.post("/account/password", [("csrf", token), ("current", WebSecurityTests.password),
                                                                    ("new", "a much longer new secret"), ("repeat", "a much longer new secret")])
            XCTAssertEqual(changed.status, .seeOther)
            let oneAfter = try await one.get("/inbox")
            XCTAssertEqual(oneAfter.status, .ok, "the changing session goes on")
            let twoAfter = try await two.get("/inbox")
            XCTAssertEqual(twoAfter.status, .seeOther, "the other session ended")

            // Only the fg_session cookie counts: the id in the URL, or under another cookie name, is ignored.
            let b = try await f.session(f.bert)
            let id = String(b.cookie.dropFirst(WebCookies.session.count + 1))
            for (path, cookie) in [("/inbox?fg_session=\(id)", nil), ("/inbox?session=\(id)", nil), ("/inbox", "session=\(id)"),
                                   ("/inbox", "FG_SESSION=\(id)"), ("/inbox", "fg_session_x=\(id)"), ("/inbox", "\(WebCookies.preSession)=\(id)"),
                                   ("/inbox;fg_session=\(id)", nil)] as [(String, String?)] {
                let r = try await Self.get(client, path, cookie: cookie)
                XCTAssertNotEqual(r.status, .ok, "\(path) \(cookie ?? "")")
            }
            var h: HTTPFields = [.authorization: "Bearer \(id)"]
            h[HTTPField.Name("X-Session")!] = id
            let header = try await Self.get(client, "/inbox", headers: h)
            XCTAssertNotEqual(header.status, .ok)
        }
    }

    // MARK: Upload

    func testUploadLimitsAndNames() async throws {
        var web = WebSettings()
        web.maxUploadMB = 1
        let f = try await Fixture(web: web)
        try await f.application().test(.live) { client in
            let s = try await f.session(f.anna)
            func send(_ files: [(String, [UInt8])], chunked: Bool = false) async throws -> TestResponse {
                let boundary = "----attack\(UInt32.random(in: 0...UInt32.max))"
                var body: [UInt8] = []
                func field(_ name: String, _ value: String) {
                    body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
                }
                field("csrf", s.csrf); field("extension", "Empfang"); field("number", "030 1234567")
                for (name, bytes) in files {
                    body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\(name)\"\r\nContent-Type: image/png\r\n\r\n".utf8)
                    body += bytes + Array("\r\n".utf8)
                }
                body += Array("--\(boundary)--\r\n".utf8)
                var h: HTTPFields = [.cookie: s.cookie, .contentType: "multipart/form-data; boundary=\(boundary)", .acceptLanguage: "en"]
                if !chunked { h[.contentLength] = "\(body.count)" }
                return try await client.execute(uri: "/send", method: .post, headers: h, body: ByteBuffer(bytes: body))
            }
            let pdf = Array("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".utf8)

            // Over web.max_upload_mb: 413, nothing handed on (with and without a Content-Length).
            let big = [UInt8](repeating: 0x41, count: 1024 * 1024 + 10)
            let tooBig = try await send([("big.txt", big)])
            XCTAssertEqual(tooBig.status, .contentTooLarge)
            let tooBigChunked = try await send([("big.txt", big)], chunked: true)
            XCTAssertTrue([.contentTooLarge, .forbidden].contains(tooBigChunked.status), "\(tooBigChunked.status)")
            XCTAssertTrue(f.jobs.submissions.isEmpty, "an upload over the limit reached the submission")

            // A 0-byte file is no file; the submission then has nothing to fax (the operation refuses it).
            let empty = try await send([("empty.pdf", [])])
            XCTAssertNotEqual(empty.status, .internalServerError)
            XCTAssertEqual(f.jobs.submissions.last?.files.count, 0)

            // A PDF named .png and names with path parts: handed on as data; the type comes from the bytes and the
            // name is never a path (the operation stores the submission as intake/web-<random>.fax).
            for name in ["fax.png", "../../../../tmp/evil.pdf", "..\\..\\evil.pdf", "/etc/passwd", "a\u{0}b.pdf"] {
                let r = try await send([(name, pdf)])
                XCTAssertNotEqual(r.status, .internalServerError, name)
                XCTAssertEqual(f.jobs.submissions.last?.files.first?.bytes, pdf, name)
                XCTAssertEqual(WebUpload.contentType(of: f.jobs.submissions.last?.files.first?.bytes ?? []), "application/pdf")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/evil.pdf"))
            XCTAssertFalse(FileManager.default.fileExists(atPath: f.dir.path + "/evil.pdf"))
            // Nothing but the database appeared in the spool either: files are written by the operation alone.
            let files = try FileManager.default.contentsOfDirectory(atPath: f.spool).filter { !$0.hasPrefix("faxgate.sqlite") }
            XCTAssertEqual(files.sorted(), ["incoming"])
        }
    }

    // MARK: Lockout and timing

    func testLockoutIsBounded_andUnknownNamesCostABcrypt() async throws {
        var web = WebSettings()
        web.lockoutMinutes = 1
        web.lockoutMaxMinutes = 2
        let f = try await Fixture(web: web)
        // By design: any number of failures locks for at most lockout_max_minutes.
        for failures in [3, 4, 10, 30, 1_000, Int.max / 2] {
            let d = LoginLockout.duration(failures: failures, settings: f.web) ?? 0
            XCTAssertLessThanOrEqual(d, 2 * 60, "\(failures) failures")
        }
        try await f.application().test(.live) { client in
            let b = Browser(client)
            // An attacker hammers the admin's name.
            for _ in 0..<12 { try await b.login("root", "wrong password guess") }
            var root = try await f.storage.user(name: "root")!
            let until = try XCTUnwrap(root.lockedUntil)
            XCTAssertLessThanOrEqual(until.timeIntervalSinceNow, 2 * 60 + 5, "the admin is locked for at most lockout_max_minutes")
            // Once the lock ran out, the right password works however many failures there were.
            root.lockedUntil = Date().addingTimeInterval(-1)
            root.failedLogins = 1_000_000
            try await f.storage.updateUser(root)
            let ok = try await b.login("root")
            XCTAssertEqual(ok.status, .seeOther)
            XCTAssertTrue(WebSecurityTests.location(ok).hasPrefix("/login/totp"))

            // Timing: an unknown name runs bcrypt too (AccountPages.login verifies against Passwords.dummyHash).
            func median(_ name: String) async throws -> Double {
                var times: [Double] = []
                for i in 0..<5 {
                    let c = Browser(client)
                    let token = try await c.csrf(on: "/login")
                    let start = ContinuousClock.now
                    // A fresh name each time for unknown names, so none gets locked.
                    _ = try await c.post("/login", [("csrf", token), ("name", name == "anna" ? name : "\(name)\(i)"), ("password", "nope nope nope")])
                    let d = ContinuousClock.now - start
                    times.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
                    if name == "anna" {
                        var anna = try await f.storage.user(name: "anna")!
                        anna.failedLogins = 0; anna.lockedUntil = nil
                        try await f.storage.updateUser(anna)
                    }
                }
                return times.sorted()[2]
            }
            let known = try await median("anna"), unknown = try await median("nosuchuser")
            print("login timing: known name, wrong password \(known * 1000) ms; unknown name \(unknown * 1000) ms; ratio \(unknown / known)")
            // Without bcrypt an unknown name would answer in about a millisecond.
            XCTAssertGreaterThan(unknown, known * 0.3, "an unknown name answers much faster than a known one")
        }
    }

    // MARK: Monitoring

    func testProbesFromOtherAddressesAreRefused_andLabelsCarryNoNumbers() async throws {
        var web = WebSettings()
        web.trustedProxies = ["127.0.0.1", "::1"]
        let f = try await Fixture(web: web)
        try await f.application().test(.live) { client in
            for path in ["/metrics", "/health/ready", "/health/live"] {
                let own = try await Self.get(client, path)
                XCTAssertTrue([.ok, .serviceUnavailable].contains(own.status), "\(path) from loopback: \(own.status)")
                for xff in ["203.0.113.9", "127.0.0.1, 203.0.113.9", "10.0.0.1", "evil.example", "127.0.0.1 evil", "fe80::1%eth0", "unknown",
                            "203.0.113.9, evil"] {
                    let r = try await Self.get(client, path, headers: [HTTPField.Name("X-Forwarded-For")!: xff])
                    XCTAssertEqual(r.status, .forbidden, "\(path) forwarded for \(xff)")
                }
            }
            let metrics = Self.text(try await Self.get(client, "/metrics"))
            // Every label value: no digits-only values, no addresses, no names of people.
            for match in metrics.matches(of: /([a-z_]+)="([^"]*)"/) {
                let value = String(match.2)
                XCTAssertFalse(value.contains { $0.isNumber } && match.1 != "le" && match.1 != "quantile", "label \(match.1)=\(value)")
                XCTAssertFalse(value.contains("@") || value.contains("127.0.0.1"), "label \(match.1)=\(value)")
            }
        }
    }
}

/// The job and status operations at the pages' boundary: records what the pages hand on, and answers
/// what a running gateway would for the items of this test (a submission of Labor, readiness of nothing).
final class RecordingJobs: JobOperations, StatusOperations, @unchecked Sendable {
    private let lock = NSLock()
    private var _calls: [String] = []
    private var _submissions: [WebFaxSubmission] = []
    var submissionOwner: (String, Int64)?
    var calls: [String] { lock.withLock { _calls } }
    var submissions: [WebFaxSubmission] { lock.withLock { _submissions } }

    func cancel(jobID: Int64, by actor: WebActor) async throws -> JobCancelResult {
        lock.withLock { _calls.append("cancel \(jobID) by \(actor.user.name)") }
        return .notFound
    }
    func resend(jobID: Int64, by actor: WebActor) async throws -> JobResendResult {
        lock.withLock { _calls.append("resend \(jobID) by \(actor.user.name)") }
        return .notFound
    }
    func checkNumber(_ written: String, extensionName: String, by actor: WebActor) async throws -> (any LocalizedReason)? { nil }
    func submit(_ submission: WebFaxSubmission, by actor: WebActor) async throws -> WebSubmitResult {
        lock.withLock { _submissions.append(submission) }
        return .refused(SubmissionReason.nothingToFax)
    }
    func submission(id: Int64) async throws -> WebSubmissionStatus? {
        guard let (ext, own) = submissionOwner, id == own else { return nil }
        return WebSubmissionStatus(intakeID: id, state: .rendering, extensionName: ext, userName: "bert", number: "+49301234567",
                                   submittedAt: Date(), jobs: [], refusal: nil, refusalText: nil)
    }
    func dashboard() async -> DashboardStatus { fatalError("not opened by these tests") }
    func readiness() async -> Readiness { Readiness(checks: [.init(name: "database", ok: true, reason: "the journal answers")]) }
    func refreshGauges() async {}
}
