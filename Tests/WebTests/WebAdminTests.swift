@testable import FaxgateApp
import FaxgateCore
@testable import FaxgateWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SQLiteStorage
import TestSupport
import XCTest

/// The admin pages over real HTTP (Hummingbird's live server on loopback) with the real SQLite storage: who may
/// open them, the journal's filters and paging over calls and jobs, the users page with its one-time passwords,
/// the audit trail, and the log page's search and redaction (the app's own `WebAdminOperations`). What needs the
/// running gateway (mail again, retry now, dashboard) is proven end to end in `WebAdminEndToEndTests`.
final class WebAdminTests: XCTestCase {
    final class Fixture: @unchecked Sendable {
        let dir: TemporaryDirectory
        let spool: String
        let storage: SQLiteStorage
        let config: Configuration
        var admin: WebUser!
        var adminCookie = "", adminCSRF = ""
        var userCookie = "", userCSRF = ""

        init() async throws {
            dir = try TemporaryDirectory("web-admin")
            spool = dir.path + "/spool"
            try FileManager.default.createDirectory(atPath: spool + "/log", withIntermediateDirectories: true)
            let path = dir.path + "/faxgate.yaml"
            try """
                spool_directory: \(spool)
                smtp: {host: localhost, port: 25, security: none}
                mail: {from: fax@example.com}
                capi: {driver: rcapi, host: 127.0.0.1, port: 2662}
                privacy: {country_code: "49"}
                extensions:
                  - {name: Empfang, numbers: ["100"], email: [empfang@example.com]}
                  - {name: Labor, numbers: ["200"], email: [labor@example.com]}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            config = try ConfigLoader.load(path: path)
            storage = try SQLiteStorage(path: spool + "/faxgate.sqlite")
            try await storage.migrate()
            admin = try await storage.insertUser(WebUser(name: "admin", role: .admin, extensions: [], passwordHash: "x",
                                                         mustChangePassword: false, totpSecret: Array(repeating: 7, count: 20)))
            let user = try await storage.insertUser(WebUser(name: "anna", role: .user, extensions: ["Empfang", "Labor"], passwordHash: "x",
                                                            mustChangePassword: false))
            (adminCookie, adminCSRF) = try await session(for: admin)
            (userCookie, userCSRF) = try await session(for: user)
        }

        /// A session as the login pages leave it (password and, when `verified`, the second factor done).
        func session(for user: WebUser, verified: Bool = true) async throws -> (cookie: String, csrf: String) {
            let id = WebSessions.randomToken(), csrf = WebSessions.randomToken()
            try await storage.insertSession(WebSession(idHash: WebSessions.hash(id), userID: user.id!, createdAt: Date(), lastSeenAt: Date(),
                                                       secondFactorVerified: verified, csrfToken: csrf, clientAddress: "127.0.0.1"))
            return ("\(WebCookies.session)=\(id)", csrf)
        }

        var application: some ApplicationProtocol {
            var logger = Logger(label: "faxgate.web")
            logger.logLevel = .error
            let config = self.config, storage = self.storage
            let env = WebEnvironment(
                storage: storage, configuration: { config }, jobs: AdminPagesOnly(), office: AdminPagesOnly(),
                privacy: WebPrivacyOperations(configuration: { config }, configPath: dir.path + "/faxgate.yaml", storage: storage, logger: logger),
                status: AdminPagesOnly(), logger: logger,
                admin: WebAdminOperations(pipeline: nil, queue: nil, storage: storage, configuration: { config }))
            let server = WebServer(environment: env, settings: WebSettings())
            return Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        }

        func existing(name: String) async throws -> WebUser {
            guard let u = try await storage.user(name: name) else { throw StorageError("no user \(name)") }
            return u
        }
        func existing(id: Int64) async throws -> WebUser {
            guard let u = try await storage.user(id: id) else { throw StorageError("no user \(id)") }
            return u
        }

        /// The stored hash of the session id in a `fg_session=<id>` cookie.
        static func idHash(_ cookie: String) -> String { WebSessions.hash(String(cookie.drop { $0 != "=" }.dropFirst())) }

        /// A day at local noon, `days` after 2026-11-20 (the journal's date filter works in local days).
        static func day(_ days: Int, hour: Int = 12) -> Date {
            var c = DateComponents()
            c.year = 2026; c.month = 11; c.day = 20 + days; c.hour = hour
            return Calendar.current.date(from: c)!
        }

        @discardableResult
        func call(_ kind: CallRecord.Kind = .fax, ext: String?, state: CallRecord.State, at: Date, caller: String? = "301112223",
                  station: String? = nil) async throws -> Int64 {
            var c = CallRecord(kind: kind, state: .receiving, startedAt: at, callingNumber: caller, calledNumber: ext == "Labor" ? "200" : "100",
                               extensionName: ext)
            c = try await storage.insertCall(c, event: "test call")
            c.state = state
            c.remoteStationID = station
            c.callingNumberType = caller == nil ? nil : .national
            c.outcome = state == .rejected ? .rejected : .complete
            try await storage.updateCall(c, event: "test state")
            return c.id!
        }

        @discardableResult
        func job(ext: String, number: String, state: FaxJob.State, at: Date) async throws -> Int64 {
            var j = FaxJob(state: .ready, createdAt: at, intakeID: nil, sender: "alice@example.com", senderName: nil, extensionName: ext,
                           language: "en", number: number, dialString: "0" + number.dropFirst(3), subject: "test", pages: 1, fine: true,
                           sffPath: spool + "/none.sff", requestMessageID: nil)
            j = try await storage.insertJobs([j], intake: nil, event: "test job").first!
            if state != .ready {
                var moved = j
                moved.state = state
                try await storage.updateJob(moved, expecting: .ready, event: "test state")
            }
            return j.id!
        }
    }

    // MARK: Requests

    static func get(_ client: some TestClientProtocol, _ path: String, cookie: String) async throws -> TestResponse {
        try await client.execute(uri: path, method: .get, headers: [.cookie: cookie, .acceptLanguage: "en"])
    }

    static func post(_ client: some TestClientProtocol, _ path: String, cookie: String, _ fields: [(String, String)]) async throws -> TestResponse {
        let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        return try await client.execute(uri: path, method: .post,
                                        headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded", .acceptLanguage: "en"],
                                        body: ByteBuffer(string: body))
    }

    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }

    /// The ids the journal lists, in order: "c<id>" for calls, "j<id>" for jobs.
    static func journalItems(_ html: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"<td><a href="/admin/(calls|jobs)/(\d+)">"#)
        return pattern.matches(in: html, range: NSRange(html.startIndex..., in: html)).map { m in
            let kind = String(html[Range(m.range(at: 1), in: html)!]) == "calls" ? "c" : "j"
            return kind + String(html[Range(m.range(at: 2), in: html)!])
        }
    }

    static func element(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\""), let close = html[start.upperBound...].firstIndex(of: ">"),
              let end = html[close...].range(of: "</") else { return nil }
        return String(html[html.index(after: close)..<end.lowerBound])
    }

    // MARK: Who may open the admin pages

    /// A user (role user) gets 403 on every admin page and action, and nothing changes; an admin whose second
    /// factor is not verified is sent to the TOTP step; without a session every page sends to /login.
    func testAdminPages_refuseUsersUnverifiedAdminsAndStrangers() async throws {
        let f = try await Fixture()
        let callID = try await f.call(ext: "Empfang", state: .mailed, at: Date())
        try await f.storage.putDocument(StoredDocument(callID: callID, kind: "pdf", filename: "fax.pdf", bytes: Array("%PDF-1.4".utf8)))
        let jobID = try await f.job(ext: "Empfang", number: "+49301234567", state: .deferred, at: Date())
        let (unverified, unverifiedCSRF) = try await f.session(for: f.admin, verified: false)
        let pages = ["/admin", "/admin/journal", "/admin/calls/\(callID)", "/admin/calls/\(callID)/documents/0", "/admin/jobs/\(jobID)",
                     "/admin/queue", "/admin/users", "/admin/audit", "/admin/logs", "/admin/journal?dir=in&q=301"]
        let actions: [(String, [(String, String)])] = [
            ("/admin/calls/\(callID)/resend-mail", []), ("/admin/jobs/\(jobID)/cancel", []), ("/admin/jobs/\(jobID)/retry", []),
            ("/admin/jobs/\(jobID)/resend", []), ("/admin/users", [("name", "mallory"), ("role", "admin")]),
            ("/admin/users/\(f.admin.id!)/disable", []), ("/admin/users/\(f.admin.id!)/reset-password", []),
            ("/admin/users/\(f.admin.id!)/update", [("role", "user")]),
        ]
        try await f.application.test(.live) { client in
            for path in pages {
                let awaited1 = try await Self.get(client, path, cookie: f.userCookie).status
                XCTAssertEqual(awaited1, .forbidden, "user: \(path)")
                let half = try await Self.get(client, path, cookie: unverified)
                XCTAssertEqual(half.status, .seeOther, "admin without second factor: \(path)")
                XCTAssertEqual(half.headers[.location], "/login/totp", path)
                let none = try await Self.get(client, path, cookie: "")
                XCTAssertEqual(none.status, .seeOther, "no session: \(path)")
                XCTAssertTrue(none.headers[.location]?.hasPrefix("/login") == true, path)
            }
            for (path, fields) in actions {
                let asUser = try await Self.post(client, path, cookie: f.userCookie, [("csrf", f.userCSRF)] + fields)
                XCTAssertEqual(asUser.status, .forbidden, "user: POST \(path)")
                let half = try await Self.post(client, path, cookie: unverified, [("csrf", unverifiedCSRF)] + fields)
                XCTAssertNotEqual(half.status.code / 100, 2, "admin without second factor: POST \(path)")
                // The admin's own session without the token: refused before any handler.
                let noToken = try await Self.post(client, path, cookie: f.adminCookie, fields)
                XCTAssertEqual(noToken.status, .forbidden, "no CSRF token: POST \(path)")
            }
            // And the admin opens them all.
            for path in pages where path != "/admin" {
                let awaited2 = try await Self.get(client, path, cookie: f.adminCookie).status
                XCTAssertEqual(awaited2, .ok, "admin: \(path)")
            }
        }
        // Nothing happened: no user added, the admin still enabled with the old hash, the job still waiting, no audit.
        let users = try await f.storage.users()
        XCTAssertEqual(users.map(\.name).sorted(), ["admin", "anna"])
        XCTAssertEqual(users.first { $0.name == "admin" }?.disabled, false)
        XCTAssertEqual(users.first { $0.name == "admin" }?.passwordHash, "x")
        let awaited3 = try await f.storage.job(id: jobID)?.state
        XCTAssertEqual(awaited3, .deferred)
        let awaited4 = try await f.storage.auditEntries(limit: 10, beforeID: nil, actor: nil, action: nil)
        XCTAssertEqual(awaited4, [])
    }

    // MARK: Journal

    func testJournal_filtersReturnTheRightCallsAndJobs() async throws {
        let f = try await Fixture()
        let c1 = try await f.call(.fax, ext: "Empfang", state: .mailed, at: Fixture.day(0, hour: 10))
        let c2 = try await f.call(.voice, ext: "Empfang", state: .mailed, at: Fixture.day(1))
        let c3 = try await f.call(.fax, ext: nil, state: .rejected, at: Fixture.day(1, hour: 15), caller: "401234567")
        let c4 = try await f.call(.fax, ext: "Labor", state: .mailFailed, at: Fixture.day(2), caller: nil, station: "ACME LTD")
        let j1 = try await f.job(ext: "Empfang", number: "+49301234567", state: .done, at: Fixture.day(0, hour: 14))
        let j2 = try await f.job(ext: "Labor", number: "+49409876543", state: .failed, at: Fixture.day(3))
        let (c, j) = ({ (id: Int64) in "c\(id)" }, { (id: Int64) in "j\(id)" })
        let cases: [(String, [String])] = [
            ("", [j(j2), c(c4), c(c3), c(c2), j(j1), c(c1)]),
            ("dir=in", [c(c4), c(c3), c(c2), c(c1)]),
            ("dir=out", [j(j2), j(j1)]),
            ("kind=voice", [c(c2)]),
            ("kind=fax&dir=in", [c(c4), c(c3), c(c1)]),
            ("state=mail_failed", [c(c4)]),
            ("state=failed", [j(j2)]),
            ("state=rejected", [c(c3)]),
            ("ext=Labor", [j(j2), c(c4)]),
            ("ext=Empfang&dir=out", [j(j1)]),
            ("q=ACME", [c(c4)]),
            ("q=9876543", [j(j2)]),
            ("q=401234", [c(c3)]),
            ("from=2026-11-21&to=2026-11-22", [c(c4), c(c3), c(c2)]),
            ("from=2026-11-20&to=2026-11-20", [j(j1), c(c1)]),
            ("to=2026-11-19", []),
        ]
        try await f.application.test(.live) { client in
            for (query, expected) in cases {
                let page = try await Self.get(client, "/admin/journal?" + query, cookie: f.adminCookie)
                XCTAssertEqual(page.status, .ok, query)
                XCTAssertEqual(Self.journalItems(Self.text(page)), expected, "filter \(query)")
            }
            let all = Self.text(try await Self.get(client, "/admin/journal", cookie: f.adminCookie))
            XCTAssertTrue(all.contains("4 calls match the filter."), "count of matching calls")
            XCTAssertTrue(all.contains("<td>+49 "), "a national caller in international form")
            XCTAssertTrue(all.contains("1112223"))
            // The detail of a call and a job, with their history.
            let detail = Self.text(try await Self.get(client, "/admin/calls/\(c4)", cookie: f.adminCookie))
            XCTAssertTrue(detail.contains("ACME LTD") && detail.contains("test state") && detail.contains("mail failed"), detail)
            XCTAssertTrue(detail.contains("action=\"/admin/calls/\(c4)/resend-mail\""), "a failed mail can be sent again")
            XCTAssertTrue(detail.contains("labor@example.com"), "the extension's current address is named")
            let awaited5 = try await Self.get(client, "/admin/calls/\(c3)", cookie: f.adminCookie)
            XCTAssertFalse(Self.text(awaited5).contains("resend-mail"),
                           "a rejected call has no mail")
            let job = Self.text(try await Self.get(client, "/admin/jobs/\(j2)", cookie: f.adminCookie))
            XCTAssertTrue(job.contains("+49409876543") && job.contains("action=\"/admin/jobs/\(j2)/resend\""), job)
            let awaited6 = try await Self.get(client, "/admin/calls/99999", cookie: f.adminCookie).status
            XCTAssertEqual(awaited6, .notFound)
        }
    }

    /// Keyset paging over two lists: every call and job exactly once, newest first, across pages.
    func testJournal_pagingWalksCallsAndJobsOnceEach() async throws {
        let f = try await Fixture()
        var expected: [(Date, String)] = []
        let start = Date().addingTimeInterval(-86_400)
        for i in 0..<130 {
            let at = start.addingTimeInterval(Double(i) * 60)
            expected.append((at, "c\(try await f.call(ext: i % 2 == 0 ? "Empfang" : "Labor", state: .mailed, at: at))"))
            if i % 6 == 0 {
                let jat = at.addingTimeInterval(30)
                expected.append((jat, "j\(try await f.job(ext: "Empfang", number: "+4930\(1_000_000 + i)", state: .done, at: jat))"))
            }
        }
        let newestFirst = expected.sorted { $0.0 > $1.0 }.map(\.1)
        try await f.application.test(.live) { client in
            var seen: [String] = []
            var next: String? = "/admin/journal"
            var pages = 0
            while let path = next {
                let html = Self.text(try await Self.get(client, path, cookie: f.adminCookie))
                let items = Self.journalItems(html)
                XCTAssertLessThanOrEqual(items.count, AdminPage.pageSize)
                seen += items
                pages += 1
                next = html.range(of: #"href="(/admin/journal\?[^"]*)" rel="next""#, options: .regularExpression).map {
                    String(html[$0].dropFirst(6).dropLast(12)).replacingOccurrences(of: "&amp;", with: "&")
                }
                XCTAssertLessThan(pages, 10, "paging does not end")
                if pages >= 10 { break }
            }
            XCTAssertEqual(seen, newestFirst)
            XCTAssertEqual(pages, 4, "153 items in pages of 50")
            // Filtered paging keeps the filter: only Labor calls, no jobs.
            let labor = Self.text(try await Self.get(client, "/admin/journal?ext=Labor", cookie: f.adminCookie))
            let more = try XCTUnwrap(labor.range(of: #"href="(/admin/journal\?[^"]*)" rel="next""#, options: .regularExpression))
            let second = String(labor[more].dropFirst(6).dropLast(12)).replacingOccurrences(of: "&amp;", with: "&")
            XCTAssertTrue(second.contains("ext=Labor"), second)
            let rest = Self.journalItems(Self.text(try await Self.get(client, second, cookie: f.adminCookie)))
            XCTAssertEqual(Self.journalItems(labor).count + rest.count, 65)
            XCTAssertTrue(rest.allSatisfy { $0.hasPrefix("c") })
        }
    }

    // MARK: Users and the audit trail

    func testUsers_actionsFollowTheRules_andEachIsAudited() async throws {
        let f = try await Fixture()
        try await f.application.test(.live) { client in
            // Add: the one-time password is shown once, stored only as a bcrypt hash, and must be changed.
            let added = try await Self.post(client, "/admin/users", cookie: f.adminCookie,
                                            [("csrf", f.adminCSRF), ("name", "berta"), ("role", "user"), ("ext", "Labor")])
            XCTAssertEqual(added.status, .ok, "\(added.headers[.location] ?? "") \(Self.text(added))")
            XCTAssertEqual(added.headers[.cacheControl], "no-store")
            let password = try XCTUnwrap(Self.element("one-time-password", in: Self.text(added)))
            var berta = try await f.existing(name: "berta")
            XCTAssertEqual(berta.extensions, ["Labor"])
            XCTAssertEqual(berta.role, .user)
            XCTAssertTrue(berta.mustChangePassword)
            XCTAssertNil(Passwords.problem(password, name: "berta"), "the one-time password passes the password rules")
            let awaited7 = try await Passwords.verify(password, hash: berta.passwordHash)
            XCTAssertTrue(awaited7)
            XCTAssertFalse(berta.passwordHash.contains(password))
            let awaited8 = try await Self.get(client, "/admin/users", cookie: f.adminCookie)
            XCTAssertFalse(Self.text(awaited8).contains(password), "shown only once")

            // Refused: bad name, taken name, unknown extension, a user without extension — nothing stored.
            for fields in [[("name", "Berta!")], [("name", "berta"), ("ext", "Labor")], [("name", "carla"), ("ext", "Nope")],
                           [("name", "dora"), ("role", "user")]] {
                let r = try await Self.post(client, "/admin/users", cookie: f.adminCookie, [("csrf", f.adminCSRF)] + fields)
                XCTAssertEqual(r.status, .unprocessableContent, "\(fields)")
            }
            let awaited9 = try await f.storage.users().count
            XCTAssertEqual(awaited9, 3)

            // Role and extensions; then disable (ends her sessions), enable, reset password, reset TOTP, log out.
            let (bertaCookie, _) = try await f.session(for: berta)
            let awaited10 = try await f.storage.session(idHash: Fixture.idHash(bertaCookie))
            XCTAssertNotNil(awaited10, "berta has a session")
            let id = berta.id!
            var r = try await Self.post(client, "/admin/users/\(id)/update", cookie: f.adminCookie,
                                        [("csrf", f.adminCSRF), ("role", "user"), ("ext", "Empfang"), ("ext", "Labor")])
            XCTAssertEqual(r.headers[.location], "/admin/users?done=user_updated")
            let awaited11 = try await f.storage.user(id: id)?.extensions
            XCTAssertEqual(awaited11, ["Empfang", "Labor"])
            r = try await Self.post(client, "/admin/users/\(id)/disable", cookie: f.adminCookie, [("csrf", f.adminCSRF)])
            XCTAssertEqual(r.headers[.location], "/admin/users?done=user_disabled")
            let awaited12 = try await f.storage.user(id: id)?.disabled
            XCTAssertEqual(awaited12, true)
            let awaited13 = try await f.storage.session(idHash: Fixture.idHash(bertaCookie))
            XCTAssertNil(awaited13, "a disabled user's session ended")
            r = try await Self.post(client, "/admin/users/\(id)/enable", cookie: f.adminCookie, [("csrf", f.adminCSRF)])
            let awaited14 = try await f.storage.user(id: id)?.disabled
            XCTAssertEqual(awaited14, false)
            let reset = try await Self.post(client, "/admin/users/\(id)/reset-password", cookie: f.adminCookie, [("csrf", f.adminCSRF)])
            let second = try XCTUnwrap(Self.element("one-time-password", in: Self.text(reset)))
            XCTAssertNotEqual(second, password)
            berta = try await f.existing(id: id)
            let awaited15 = try await Passwords.verify(second, hash: berta.passwordHash)
            XCTAssertTrue(awaited15)
            let awaited16 = try await Passwords.verify(password, hash: berta.passwordHash)
            XCTAssertFalse(awaited16)
            XCTAssertTrue(berta.mustChangePassword)
            berta.totpSecret = Array(repeating: 1, count: 20)
            berta.recoveryCodeHashes = ["h"]
            try await f.storage.updateUser(berta)
            r = try await Self.post(client, "/admin/users/\(id)/reset-totp", cookie: f.adminCookie, [("csrf", f.adminCSRF)])
            XCTAssertEqual(r.headers[.location], "/admin/users?done=totp_reset")
            berta = try await f.existing(id: id)
            XCTAssertNil(berta.totpSecret)
            XCTAssertEqual(berta.recoveryCodeHashes, [])
            let (again, _) = try await f.session(for: berta)
            r = try await Self.post(client, "/admin/users/\(id)/logout", cookie: f.adminCookie, [("csrf", f.adminCSRF)])
            XCTAssertEqual(r.headers[.location], "/admin/users?done=logged_out")
            let awaited17 = try await f.storage.session(idHash: Fixture.idHash(again))
            XCTAssertNil(awaited17, "logged out everywhere")

            // The admin cannot disable, demote or reset themselves here.
            for (action, fields) in [("disable", []), ("reset-password", []), ("reset-totp", []), ("update", [("role", "user")])] {
                let refused = try await Self.post(client, "/admin/users/\(f.admin.id!)/\(action)", cookie: f.adminCookie,
                                                  [("csrf", f.adminCSRF)] + fields)
                XCTAssertEqual(refused.headers[.location], "/admin/users?error=self", action)
            }
            let me = try await f.existing(id: f.admin.id!)
            XCTAssertEqual(me.role, .admin)
            XCTAssertFalse(me.disabled)
            XCTAssertNotNil(me.totpSecret)

            // Every action in the audit trail: who, from where, what, on whom — and filters by actor and action.
            let audit = Self.text(try await Self.get(client, "/admin/audit", cookie: f.adminCookie))
            for action in ["user.add", "user.update", "user.disable", "user.enable", "user.reset_password", "user.reset_totp", "user.logout_all"] {
                XCTAssertTrue(audit.contains("<td>admin</td><td>127.0.0.1</td><td>\(action)</td><td>user berta</td>"), "audit of \(action)")
            }
            XCTAssertFalse(audit.contains(password) || audit.contains(second), "no password in the audit trail")
            let resets = Self.text(try await Self.get(client, "/admin/audit?action=user.reset", cookie: f.adminCookie))
            XCTAssertEqual(resets.components(separatedBy: "<td>user.reset").count - 1, 2, "prefix filter")
            XCTAssertFalse(resets.contains("<td>user.add</td>"))
            let awaited18 = try await Self.get(client, "/admin/audit?actor=nobody", cookie: f.adminCookie)
            XCTAssertTrue(Self.text(awaited18).contains("No entries."))
        }
    }

    // MARK: Logs

    /// The log page finds a call by id as a whole number, and shows every line redacted again (a number written
    /// before a rule existed comes out as a pseudonym); only days with a file are read.
    func testLogs_searchByIdShowsOnlyRedactedLines() async throws {
        let f = try await Fixture()
        let today = DailyLogFiles.fileName(for: Date())
        let older = DailyLogFiles.fileName(for: Date().addingTimeInterval(-3 * 86_400))
        try """
            2026-11-20T10:00:00.000Z info faxgate.reception: [17] answering fax call caller=+49 30 5550011 extension=Empfang
            2026-11-20T10:00:01.000Z info faxgate.reception: [170] answering fax call caller=+49 40 5550022
            2026-11-20T10:00:02.000Z info faxgate.queue: dialling job=17 to anna@example.org
            2026-11-20T10:00:03.000Z info faxgate.outbox: [5] mail accepted

            """.write(toFile: "\(f.spool)/log/\(today)", atomically: true, encoding: .utf8)
        try "2026-11-17T08:00:00.000Z info faxgate: old day marker-xyz\n".write(toFile: "\(f.spool)/log/\(older)", atomically: true, encoding: .utf8)
        try await f.application.test(.live) { client in
            let page = Self.text(try await Self.get(client, "/admin/logs?q=17", cookie: f.adminCookie))
            let shown = try XCTUnwrap(Self.element("log", in: page))
            let lines = shown.split(separator: "\n")
            XCTAssertEqual(lines.count, 2, shown)
            XCTAssertTrue(lines[0].contains("[17] answering"))
            XCTAssertTrue(lines[1].contains("job=17"))
            XCTAssertFalse(shown.contains("[170]"), "17 is a whole number, not a prefix")
            for raw in ["5550011", "30 5550011", "anna@example.org"] {
                XCTAssertFalse(page.contains(raw), "\(raw) shown unredacted")
            }
            // Words narrow further; a day is chosen from the files there are; anything else picks the newest.
            let awaited19 = try await Self.get(client, "/admin/logs?q=17+dialling", cookie: f.adminCookie)
            XCTAssertEqual(Self.element("log", in: Self.text(awaited19))?
                .split(separator: "\n").count, 1)
            let day = String(older.dropFirst(DailyLogFiles.prefix.count).dropLast(DailyLogFiles.suffix.count))
            let awaited20 = try await Self.get(client, "/admin/logs?day=\(day)", cookie: f.adminCookie)
            XCTAssertTrue(Self.text(awaited20).contains("marker-xyz"))
            let odd = Self.text(try await Self.get(client, "/admin/logs?day=..%2F..%2Fetc%2Fpasswd", cookie: f.adminCookie))
            XCTAssertFalse(odd.contains("root:"))
            XCTAssertTrue(odd.contains("[5] mail accepted"), "an unknown day shows the newest")
        }
    }
}

/// The operations the admin pages tested here do not call.
struct AdminPagesOnly: JobOperations, OfficeSettingsOperations, StatusOperations {
    struct NotUsed: Error {}
    func cancel(jobID: Int64, by actor: WebActor) async throws -> JobCancelResult { throw NotUsed() }
    func resend(jobID: Int64, by actor: WebActor) async throws -> JobResendResult { throw NotUsed() }
    func checkNumber(_ written: String, extensionName: String, by actor: WebActor) async throws -> (any LocalizedReason)? { throw NotUsed() }
    func submit(_ submission: WebFaxSubmission, by actor: WebActor) async throws -> WebSubmitResult { throw NotUsed() }
    func submission(id: Int64) async throws -> WebSubmissionStatus? { throw NotUsed() }
    func dashboard() async -> DashboardStatus { fatalError("the dashboard is tested end to end") }
    func readiness() async -> Readiness { fatalError("not used by the admin pages") }
    func refreshGauges() async {}
    func current() async throws -> OfficeSettingsSnapshot { throw NotUsed() }
    func save(_ settings: OfficeSettings, expectingVersion: Int, action: String, target: String, by actor: WebActor) async throws -> OfficeSaveResult { throw NotUsed() }
    func storeGreeting(_ bytes: [UInt8], fileName: String, extensionName: String) async throws -> GreetingUploadResult { throw NotUsed() }
    func greetingWAV(extensionName: String) async throws -> [UInt8]? { throw NotUsed() }
}
