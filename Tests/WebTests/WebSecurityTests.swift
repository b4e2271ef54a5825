@testable import FaxgateApp
@testable import FaxgateCore
@testable import FaxgateWeb
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdOTP
import HummingbirdTesting
import Logging
import SQLiteStorage
import TestSupport
import XCTest

/// Accounts and security over real HTTP (Hummingbird's live server on loopback, the real router and middleware)
/// with the real SQLite storage: sessions, CSRF, lockout, fixation, logout, timeouts, headers, cookies, the second
/// factor (TOTP with replay protection, recovery codes), admin guards, trusted proxies, language, TLS.
final class WebSecurityTests: XCTestCase {
    static let password = "correct horse battery"

    final class Fixture: @unchecked Sendable {
        let dir: TemporaryDirectory
        let storage: SQLiteStorage
        let config: Configuration
        var web: WebSettings

        init(web: WebSettings = WebSettings()) async throws {
            dir = try TemporaryDirectory("web-security")
            let spool = dir.path + "/spool"
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
            let path = dir.path + "/faxgate.yaml"
            try """
                spool_directory: \(spool)
                smtp: {host: localhost, port: 25, security: none}
                mail: {from: fax@example.com}
                extensions:
                  - {name: Empfang, numbers: ["100"], email: [empfang@example.com]}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            var config = try ConfigLoader.load(path: path)
            var web = web
            web.lockoutThreshold = 3
            config.web = web
            self.config = config
            self.web = web
            storage = try SQLiteStorage(path: spool + "/faxgate.sqlite")
            try await storage.migrate()
        }

        /// A user row as `faxgate user add` leaves it, with `WebSecurityTests.password`.
        @discardableResult
        func user(_ name: String, role: WebUser.Role = .user, totp: [UInt8]? = nil, mustChange: Bool = false) async throws -> WebUser {
            try await storage.insertUser(WebUser(name: name, role: role, extensions: ["Empfang"],
                                                 passwordHash: try await Passwords.hash(WebSecurityTests.password),
                                                 mustChangePassword: mustChange, totpSecret: totp))
        }

        /// The real router plus one admin action and one user page, as other areas write them with the helpers.
        func application() throws -> some ApplicationProtocol {
            var logger = Logger(label: "faxgate.web")
            logger.logLevel = .critical
            let config = self.config, storage = self.storage
            let env = WebEnvironment(
                storage: storage, configuration: { config }, jobs: AdminPagesOnly(), office: AdminPagesOnly(),
                privacy: WebPrivacyOperations(configuration: { config }, configPath: dir.path + "/faxgate.yaml", storage: storage, logger: logger),
                status: AdminPagesOnly(), logger: logger)
            let server = WebServer(environment: env, settings: web)
            let router = server.router()
            router.post("/test/admin-action") { request, context -> Response in
                let admin = try requireAdmin(context, request: request)
                try await audit(env, context, action: "test.action", target: "thing 1", detail: "done by \(admin.name)")
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "done")))
            }
            router.get("/test/item/:ext") { request, context -> Response in
                _ = try requireUser(context, request: request)
                try mayAccess(context, extensionName: context.parameters.get("ext"))
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "item")))
            }
            return try server.application(router: router)
        }
    }

    /// A browser: a cookie jar over the live test client.
    final class Browser: @unchecked Sendable {
        let client: any TestClientProtocol
        var cookies: [String: String] = [:]
        var extraHeaders: HTTPFields = [:]
        var language = "en"
        init(_ client: any TestClientProtocol) { self.client = client }

        var cookieHeader: String { cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }
        var session: String? { cookies[WebCookies.session] }

        func store(_ response: TestResponse) {
            for line in response.headers[values: .setCookie] {
                let first = line.split(separator: ";").first.map(String.init) ?? ""
                let kv = first.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard kv.count == 2 else { continue }
                if kv[1].isEmpty || line.contains("Max-Age=0") { cookies[kv[0]] = nil } else { cookies[kv[0]] = kv[1] }
            }
        }

        func headers(_ extra: HTTPFields = [:]) -> HTTPFields {
            var h = extraHeaders
            h[.acceptLanguage] = language
            if !cookies.isEmpty { h[.cookie] = cookieHeader }
            for field in extra { h[field.name] = field.value }
            return h
        }

        @discardableResult
        func get(_ path: String) async throws -> TestResponse {
            let r = try await client.execute(uri: path, method: .get, headers: headers(), body: nil)
            store(r)
            return r
        }

        @discardableResult
        func post(_ path: String, _ fields: [(String, String)], headers extra: HTTPFields = [:]) async throws -> TestResponse {
            let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            var h = headers(extra)
            h[.contentType] = "application/x-www-form-urlencoded"
            let r = try await client.execute(uri: path, method: .post, headers: h, body: ByteBuffer(string: body))
            store(r)
            return r
        }

        /// The `csrf` hidden field of the last page `path` shows.
        func csrf(on path: String) async throws -> String {
            let html = String(buffer: try await get(path).body)
            guard let token = WebSecurityTests.hidden("csrf", in: html) else { throw TestFailure("no csrf field on \(path)") }
            return token
        }

        /// Password step through the real form; returns the answer to the POST.
        @discardableResult
        func login(_ name: String, _ password: String = WebSecurityTests.password) async throws -> TestResponse {
            let token = try await csrf(on: "/login")
            return try await post("/login", [("csrf", token), ("name", name), ("password", password)])
        }

        @discardableResult
        func totp(_ fields: [(String, String)]) async throws -> TestResponse {
            let token = try await csrf(on: "/login/totp")
            return try await post("/login/totp", [("csrf", token)] + fields)
        }

        @discardableResult
        func logout() async throws -> TestResponse {
            let token = try await csrf(on: "/account")
            return try await post("/logout", [("csrf", token)])
        }
    }

    struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    static func hidden(_ name: String, in html: String) -> String? {
        let pattern = try! NSRegularExpression(pattern: "name=\"\(name)\" value=\"([^\"]*)\"")
        guard let m = pattern.firstMatch(in: html, range: NSRange(html.startIndex..., in: html)) else { return nil }
        return String(html[Range(m.range(at: 1), in: html)!])
    }

    static func location(_ r: TestResponse) -> String { r.headers[.location] ?? "" }
    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }

    // MARK: Sessions

    func testNoPageOrDocumentWithoutSession() async throws {
        let f = try await Fixture()
        try await f.user("anna")
        try await f.application().test(.live) { client in
            let b = Browser(client)
            for path in ["/", "/account", "/account/password", "/test/item/Empfang"] {
                let r = try await b.get(path)
                XCTAssertEqual(r.status, .seeOther, path)
                XCTAssertTrue(Self.location(r).hasPrefix("/login"), "\(path) → \(Self.location(r))")
            }
            // Other areas' pages and documents: never answered without a session.
            for path in ["/inbox", "/inbox/1", "/sent", "/send", "/admin", "/admin/journal", "/admin/users", "/admin/audit", "/admin/privacy"] {
                let r = try await b.get(path)
                XCTAssertNotEqual(r.status, .ok, path)
                XCTAssertFalse(Self.text(r).contains("Empfang"), path)
            }
            // A POST without a session (and without a token) changes nothing.
            let r = try await b.post("/test/admin-action", [])
            XCTAssertEqual(r.status, .forbidden)
            // The login page itself is open, and the user's item after login.
            let v1 = try await b.get("/login").status
            XCTAssertEqual(v1, .ok)
            let v2 = try await b.login("anna").status
            XCTAssertEqual(v2, .seeOther)
            let v3 = try await b.get("/test/item/Empfang").status
            XCTAssertEqual(v3, .ok)
            // Another extension's item is 404, as if it did not exist.
            let v4 = try await b.get("/test/item/Labor").status
            XCTAssertEqual(v4, .notFound)
        }
        let audit = try await f.storage.auditEntries(limit: 50, beforeID: nil, actor: nil, action: "test.")
        XCTAssertTrue(audit.isEmpty)
    }

    func testPostWithoutOrWithForeignCSRFTokenIsRefusedAndChangesNothing() async throws {
        let f = try await Fixture()
        try await f.user("anna")
        try await f.user("bert")
        try await f.application().test(.live) { client in
            let anna = Browser(client), bert = Browser(client)
            let v5 = try await anna.login("anna").status
            XCTAssertEqual(v5, .seeOther)
            let v6 = try await bert.login("bert").status
            XCTAssertEqual(v6, .seeOther)
            let annaToken = try await anna.csrf(on: "/account")
            let bertToken = try await bert.csrf(on: "/account")
            XCTAssertNotEqual(annaToken, bertToken)

            let v7 = try await anna.post("/account/language", [("language", "de")]).status
            XCTAssertEqual(v7, .forbidden)
            let v8 = try await anna.post("/account/language", [("csrf", bertToken), ("language", "de")]).status
            XCTAssertEqual(v8, .forbidden)
            let v9 = try await anna.post("/account/language", [("csrf", ""), ("language", "de")]).status
            XCTAssertEqual(v9, .forbidden)
            let v10 = try await anna.post("/account/language", [("language", "de")], headers: [HTTPField.Name("X-CSRF-Token")!: bertToken]).status
            XCTAssertEqual(v10,
                           .forbidden)
            // The pre-login token is not a session's token either.
            let stranger = Browser(client)
            let preToken = try await stranger.csrf(on: "/login")
            let v11 = try await anna.post("/account/language", [("csrf", preToken), ("language", "de")]).status
            XCTAssertEqual(v11, .forbidden)
            // Logout too needs the token: the session survives a forged logout.
            let v12 = try await anna.post("/logout", []).status
            XCTAssertEqual(v12, .forbidden)
            let v13 = try await anna.get("/account").status
            XCTAssertEqual(v13, .ok)
            var stored = try await f.storage.user(name: "anna")
            XCTAssertNil(stored?.language, "a refused POST changed the user")

            // The login form too: a POST without the pre-session token does not log in.
            let fresh = Browser(client)
            _ = try await fresh.get("/login")
            let r = try await fresh.post("/login", [("name", "anna"), ("password", WebSecurityTests.password)])
            XCTAssertEqual(r.status, .forbidden)
            XCTAssertNil(fresh.session)

            // With its own token (form field or header) it works.
            let v14 = try await anna.post("/account/language", [("csrf", annaToken), ("language", "de")]).status
            XCTAssertEqual(v14, .seeOther)
            stored = try await f.storage.user(name: "anna")
            XCTAssertEqual(stored?.language, "de")
            let v15 = try await anna.post("/account/language", [("language", "en")], headers: [HTTPField.Name("X-CSRF-Token")!: annaToken]).status
            XCTAssertEqual(v15,
                           .seeOther)
            stored = try await f.storage.user(name: "anna")
            XCTAssertEqual(stored?.language, "en")
        }
    }

    func testWrongPasswordsLockTheAccountWithBackOffAndUnknownNamesLookTheSame() async throws {
        // Unknown names are remembered in memory for the process: a name of its own for this test.
        let nobody = "nobody-" + UUID().uuidString.prefix(8).lowercased()
        let f = try await Fixture()
        try await f.user("anna")
        try await f.application().test(.live) { client in
            let b = Browser(client)
            let first = try await b.login("anna", "guess-1-qx")
            XCTAssertEqual(first.status, .unauthorized)
            XCTAssertNil(b.session)
            let wrongText = Self.errorText(first)
            // An unknown name gets the same words.
            let unknown = try await b.login(nobody, "guess-1-qx")
            XCTAssertEqual(unknown.status, .unauthorized)
            XCTAssertEqual(Self.errorText(unknown), wrongText)

            let v16 = try await b.login("anna", "guess-2-qx").status
            XCTAssertEqual(v16, .unauthorized)
            let third = try await b.login("anna", "guess-3-qx")
            XCTAssertEqual(third.status, .tooManyRequests)
            XCTAssertTrue(Self.errorText(third).contains("try again after"), Self.errorText(third))
            var anna = try await f.storage.user(name: "anna")!
            XCTAssertEqual(anna.failedLogins, 3)
            let firstLock = try XCTUnwrap(anna.lockedUntil).timeIntervalSinceNow
            XCTAssertEqual(firstLock, 60, accuracy: 5)

            // The right password is refused while locked.
            let locked = try await b.login("anna")
            XCTAssertEqual(locked.status, .tooManyRequests)
            XCTAssertNil(b.session)

            // Unknown names lock alike after the same count (nothing tells them apart).
            let v17 = try await b.login(nobody, "x2").status
            XCTAssertEqual(v17, .unauthorized)
            let unknownLocked = try await b.login(nobody, "x3")
            XCTAssertEqual(unknownLocked.status, .tooManyRequests)

            // The lock ends (time moved on: the stored lock lies in the past); a further failure doubles it.
            anna.lockedUntil = Date().addingTimeInterval(-1)
            try await f.storage.updateUser(anna)
            let v18 = try await b.login("anna", "guess-4-qx").status
            XCTAssertEqual(v18, .tooManyRequests)
            anna = try await f.storage.user(name: "anna")!
            XCTAssertEqual(try XCTUnwrap(anna.lockedUntil).timeIntervalSinceNow, 120, accuracy: 5)

            anna.lockedUntil = Date().addingTimeInterval(-1)
            try await f.storage.updateUser(anna)
            let ok = try await b.login("anna")
            XCTAssertEqual(ok.status, .seeOther)
            XCTAssertEqual(Self.location(ok), "/inbox")
            XCTAssertNotNil(b.session)
            anna = try await f.storage.user(name: "anna")!
            XCTAssertEqual(anna.failedLogins, 0)
            XCTAssertNil(anna.lockedUntil)
        }
        // Failed logins are audited, never with the attempted password; an unknown name is not written either.
        let audit = try await f.storage.auditEntries(limit: 100, beforeID: nil, actor: nil, action: "login.")
        XCTAssertGreaterThanOrEqual(audit.filter { $0.action == "login.failed" }.count, 5)
        for entry in audit {
            let all = "\(entry.actor) \(entry.target) \(entry.detail)"
            XCTAssertFalse(all.contains("guess-"), all)
            XCTAssertFalse(all.contains(nobody), all)
            XCTAssertFalse(all.contains(WebSecurityTests.password), all)
        }
    }

    static func errorText(_ r: TestResponse) -> String {
        let html = text(r)
        guard let start = html.range(of: "id=\"login-error\">"), let end = html[start.upperBound...].range(of: "</p>") else { return "" }
        return String(html[start.upperBound..<end.lowerBound])
    }

    func testSessionFixationAndLogout() async throws {
        let f = try await Fixture()
        try await f.user("anna")
        try await f.application().test(.live) { client in
            let b = Browser(client)
            // An attacker plants a session id before login.
            let planted = WebSessions.randomToken()
            b.cookies[WebCookies.session] = planted
            let v19 = try await b.login("anna").status
            XCTAssertEqual(v19, .seeOther)
            let loggedIn = try XCTUnwrap(b.session)
            XCTAssertNotEqual(loggedIn, planted)
            let plantedSession = try await f.storage.session(idHash: WebSessions.hash(planted))
            XCTAssertNil(plantedSession)
            // Only the hash is stored.
            let stored = try await f.storage.session(idHash: WebSessions.hash(loggedIn))
            XCTAssertNotNil(stored)
            let rawLookup = try await f.storage.session(idHash: loggedIn)
            XCTAssertNil(rawLookup)
            let attacker = Browser(client)
            attacker.cookies[WebCookies.session] = planted
            let v20 = try await attacker.get("/account").status
            XCTAssertEqual(v20, .seeOther)

            // Logout ends the session: the old cookie no longer works anywhere.
            let v21 = try await b.get("/account").status
            XCTAssertEqual(v21, .ok)
            let out = try await b.logout()
            XCTAssertEqual(out.status, .seeOther)
            XCTAssertNil(b.session, "the logout answer deletes the cookie")
            let replay = Browser(client)
            replay.cookies[WebCookies.session] = loggedIn
            let r = try await replay.get("/account")
            XCTAssertEqual(r.status, .seeOther)
            XCTAssertTrue(Self.location(r).hasPrefix("/login"))
            let gone = try await f.storage.session(idHash: WebSessions.hash(loggedIn))
            XCTAssertNil(gone)
        }
    }

    func testLogoutEverywhereEndsOtherSessions() async throws {
        let f = try await Fixture()
        try await f.user("anna")
        try await f.user("bert")
        try await f.application().test(.live) { client in
            let laptop = Browser(client), phone = Browser(client), bert = Browser(client)
            try await laptop.login("anna")
            try await phone.login("anna")
            try await bert.login("bert")
            let v22 = try await phone.get("/account").status
            XCTAssertEqual(v22, .ok)
            let token = try await laptop.csrf(on: "/account")
            let v23 = try await laptop.post("/account/logout-everywhere", [("csrf", token)]).status
            XCTAssertEqual(v23, .seeOther)
            let v24 = try await phone.get("/account").status
            XCTAssertEqual(v24, .seeOther)
            let v25 = try await laptop.get("/account").status
            XCTAssertEqual(v25, .seeOther)
            let v26 = try await bert.get("/account").status
            XCTAssertEqual(v26, .ok, "another user's session is untouched")
        }
    }

    func testIdleAndAbsoluteTimeout() async throws {
        var web = WebSettings()
        web.sessionIdleMinutes = 5
        web.sessionAbsoluteHours = 2
        let f = try await Fixture(web: web)
        try await f.user("anna")
        try await f.application().test(.live) { client in
            let b = Browser(client)
            try await b.login("anna")
            var session = try await f.storage.session(idHash: WebSessions.hash(b.session!))!
            // Four idle minutes: still valid (and the visit renews it).
            session.lastSeenAt = Date().addingTimeInterval(-4 * 60)
            try await f.storage.updateSession(session)
            let v27 = try await b.get("/account").status
            XCTAssertEqual(v27, .ok)
            session = try await f.storage.session(idHash: session.idHash)!
            XCTAssertLessThan(-session.lastSeenAt.timeIntervalSinceNow, 10)
            // Six idle minutes: over.
            session.lastSeenAt = Date().addingTimeInterval(-6 * 60)
            try await f.storage.updateSession(session)
            let v28 = try await b.get("/account").status
            XCTAssertEqual(v28, .seeOther)
            let idle = try await f.storage.session(idHash: session.idHash)
            XCTAssertNil(idle)

            // Absolute: busy all the time, but created too long ago.
            try await b.login("anna")
            var busy = try await f.storage.session(idHash: WebSessions.hash(b.session!))!
            busy.createdAt = Date().addingTimeInterval(-2 * 3600 - 60)
            busy.lastSeenAt = Date()
            try await f.storage.updateSession(busy)
            let v29 = try await b.get("/account").status
            XCTAssertEqual(v29, .seeOther)
        }
        // The purge removes what nobody asks for any more.
        let user = try await f.storage.user(name: "anna")!
        try await f.storage.insertSession(WebSession(idHash: WebSessions.hash("old"), userID: user.id!, createdAt: Date(), lastSeenAt: Date().addingTimeInterval(-3600),
                                                     secondFactorVerified: false, csrfToken: "t", clientAddress: "-"))
        let purged = try await f.storage.purgeSessions(lastSeenBefore: Date().addingTimeInterval(-300), createdBefore: Date().addingTimeInterval(-7200))
        XCTAssertGreaterThanOrEqual(purged, 1)
    }

    func testForcedPasswordChange() async throws {
        let f = try await Fixture()
        try await f.user("anna", mustChange: true)
        try await f.application().test(.live) { client in
            let b = Browser(client)
            let r = try await b.login("anna")
            XCTAssertEqual(Self.location(r), "/account/password")
            let v30 = try await b.get("/test/item/Empfang")
            XCTAssertEqual(Self.location(v30), "/account/password", "nothing else before the change")
            let token = try await b.csrf(on: "/account/password")
            let v31 = try await b.post("/account/password", [("csrf", token), ("new", "short"), ("repeat", "short")]).status
            XCTAssertEqual(v31, .badRequest)
            let v32 = try await b.post("/account/password", [("csrf", token), ("new", "annaannaanna"), ("repeat", "annaannaanna")]).status
            XCTAssertEqual(v32,
                           .seeOther, "twelve characters that are not the name are fine")
            let user = try await f.storage.user(name: "anna")!
            XCTAssertFalse(user.mustChangePassword)
            let v33 = try await b.get("/test/item/Empfang").status
            XCTAssertEqual(v33, .ok)
            let again = Browser(client)
            let v34 = try await again.login("anna").status
            XCTAssertEqual(v34, .unauthorized, "the one-time password is gone")
            let v35 = try await again.login("anna", "annaannaanna").status
            XCTAssertEqual(v35, .seeOther)
        }
        XCTAssertEqual(Passwords.problem("anna.example", name: "ANNA.EXAMPLE"), "account.password.is_name")
    }

    // MARK: Second factor

    func testAdminActionNeedsVerifiedSecondFactor() async throws {
        let f = try await Fixture()
        let secret = SecondFactor.newSecret()
        try await f.user("root", role: .admin, totp: secret)
        try await f.user("noadmin", role: .admin)
        try await f.user("anna")
        try await f.application().test(.live) { client in
            // Password only: the admin action is refused and nothing is done.
            let b = Browser(client)
            let r = try await b.login("root")
            XCTAssertEqual(Self.location(r), "/login/totp")
            let token = try await b.csrf(on: "/login/totp")
            let refused = try await b.post("/test/admin-action", [("csrf", token)])
            XCTAssertEqual(refused.status, .seeOther)
            XCTAssertEqual(Self.location(refused), "/login/totp")
            let v36 = try await b.get("/account")
            XCTAssertEqual(Self.location(v36), "/login/totp")
            let half = try await f.storage.session(idHash: WebSessions.hash(b.session!))
            XCTAssertEqual(half?.secondFactorVerified, false)

            // An admin without TOTP is sent to enrol and can do nothing else.
            let n = Browser(client)
            let v37 = try await n.login("noadmin")
            XCTAssertEqual(Self.location(v37), "/account/totp")
            let nToken = try await n.csrf(on: "/account/totp")
            let v38 = try await n.post("/test/admin-action", [("csrf", nToken)])
            XCTAssertEqual(Self.location(v38), "/account/totp")
            let v39 = try await n.get("/test/item/Empfang")
            XCTAssertEqual(Self.location(v39), "/account/totp")

            // A user is no admin.
            let u = Browser(client)
            try await u.login("anna")
            let v40 = try await u.post("/test/admin-action", [("csrf", try await u.csrf(on: "/account"))]).status
            XCTAssertEqual(v40, .forbidden)

            // With the code: the session id changes again, and the action works and is audited.
            let before = b.session
            let ok = try await b.totp([("code", SecondFactor.code(secret: secret, counter: SecondFactor.counter()))])
            XCTAssertEqual(ok.status, .seeOther)
            XCTAssertEqual(Self.location(ok), "/admin")
            XCTAssertNotEqual(b.session, before, "a new session id after the second factor")
            let done = try await b.post("/test/admin-action", [("csrf", try await b.csrf(on: "/account"))])
            XCTAssertEqual(done.status, .ok)
        }
        let audit = try await f.storage.auditEntries(limit: 10, beforeID: nil, actor: nil, action: "test.action")
        XCTAssertEqual(audit.count, 1)
        XCTAssertEqual(audit.first?.actor, "root")
        XCTAssertTrue(["127.0.0.1", "::1"].contains(audit.first?.clientAddress ?? ""), audit.first?.clientAddress ?? "")
    }

    func testTOTPCodeIsAcceptedOnceAndWrongCodesLock() async throws {
        let f = try await Fixture()
        let secret = SecondFactor.newSecret()
        try await f.user("root", role: .admin, totp: secret)
        // HummingbirdOTP's own computation of a time (independent of our counter arithmetic) agrees.
        let now = Date()
        let library = TOTP(secret: String(decoding: secret, as: UTF8.self)).compute(date: now)
        XCTAssertEqual(Int(SecondFactor.code(secret: secret, counter: SecondFactor.counter(at: now))), library)
        try await f.application().test(.live) { client in
            let code = SecondFactor.code(secret: secret, counter: SecondFactor.counter())
            let first = Browser(client)
            try await first.login("root")
            let v41 = try await first.totp([("code", code)]).status
            XCTAssertEqual(v41, .seeOther)

            // The same code again (another login, same time step): refused.
            let second = Browser(client)
            try await second.login("root")
            let replay = try await second.totp([("code", code)])
            XCTAssertEqual(replay.status, .unauthorized)
            let v42 = try await second.get("/account")
            XCTAssertEqual(Self.location(v42), "/login/totp")
            // The next step's code (clock drift allowance) is new, so it works once.
            let next = SecondFactor.code(secret: secret, counter: SecondFactor.counter() + 1)
            let v43 = try await second.totp([("code", next)]).status
            XCTAssertEqual(v43, .seeOther)
            let v44 = try await second.get("/account").status
            XCTAssertEqual(v44, .ok)

            // Codes two steps away are refused; wrong codes count toward the lockout and end the half session.
            let third = Browser(client)
            try await third.login("root")
            let far = SecondFactor.code(secret: secret, counter: SecondFactor.counter() + 3)
            let v45 = try await third.totp([("code", far)]).status
            XCTAssertEqual(v45, .unauthorized)
            let v46 = try await third.totp([("code", "000000")]).status
            XCTAssertEqual(v46, .unauthorized)
            let locked = try await third.totp([("code", "999999")])
            XCTAssertEqual(locked.status, .tooManyRequests)
            XCTAssertNil(third.session)
            let root = try await f.storage.user(name: "root")!
            XCTAssertNotNil(root.lockedUntil)
        }
    }

    func testEnrolmentWithQRCodeAndSingleUseRecoveryCodes() async throws {
        let f = try await Fixture()
        try await f.user("root", role: .admin)
        try await f.application().test(.live) { client in
            let b = Browser(client)
            let v47 = try await b.login("root")
            XCTAssertEqual(Self.location(v47), "/account/totp")
            let page = Self.text(try await b.get("/account/totp"))
            let secretText = try XCTUnwrap(Self.hidden("secret", in: page))
            let secret = Array(secretText.utf8)
            XCTAssertTrue(SecondFactor.isValidSecret(secret))
            // The QR code is an inline SVG image made on the server; the key is shown as base32 text.
            XCTAssertTrue(page.contains("src=\"data:image/svg+xml;base64,"))
            XCTAssertTrue(page.replacingOccurrences(of: " ", with: "").contains(SecondFactor.base32(secret)))
            let token = try XCTUnwrap(Self.hidden("csrf", in: page))
            let v48 = try await b.post("/account/totp", [("csrf", token), ("secret", secretText), ("code", "123456")]).status
            XCTAssertEqual(v48, .badRequest)
            let done = try await b.post("/account/totp", [("csrf", token), ("secret", secretText),
                                                          ("code", SecondFactor.code(secret: secret, counter: SecondFactor.counter()))])
            XCTAssertEqual(done.status, .ok)
            let codes = Self.listItems(Self.text(done))
            XCTAssertEqual(codes.count, 10)
            XCTAssertEqual(Set(codes).count, 10)
            let stored = try await f.storage.user(name: "root")!
            XCTAssertEqual(stored.totpSecret, secret)
            XCTAssertEqual(stored.recoveryCodeHashes.count, 10)
            XCTAssertFalse(stored.recoveryCodeHashes.contains(codes[0]), "codes are stored hashed")
            let v49 = try await b.get("/account").status
            XCTAssertEqual(v49, .ok, "enrolled: the session is verified")

            // A recovery code logs in once.
            try await b.logout()
            try await b.login("root")
            let v50 = try await b.totp([("recovery", codes[3].uppercased())]).status
            XCTAssertEqual(v50, .seeOther)
            let v51 = try await b.get("/account").status
            XCTAssertEqual(v51, .ok)
            try await b.logout()
            try await b.login("root")
            let v52 = try await b.totp([("recovery", codes[3])]).status
            XCTAssertEqual(v52, .unauthorized)
            let after = try await f.storage.user(name: "root")!
            XCTAssertEqual(after.recoveryCodeHashes.count, 9)
        }
        XCTAssertNotNil(QRCodeSVG.modules("otpauth://totp/Faxgate:root?secret=ABC&issuer=Faxgate"))
    }

    static func listItems(_ html: String) -> [String] {
        guard let start = html.range(of: "id=\"recovery-codes\">"), let end = html[start.upperBound...].range(of: "</ul>") else { return [] }
        let list = html[start.upperBound..<end.lowerBound]
        return list.components(separatedBy: "<li>").dropFirst().map { $0.components(separatedBy: "</li>")[0] }
    }

    // MARK: Headers, cookies, proxies, language

    func testSecurityHeadersOnEveryResponse() async throws {
        let f = try await Fixture()
        try await f.user("anna")
        try await f.application().test(.live) { client in
            let b = Browser(client)
            var responses: [(String, TestResponse)] = []
            responses.append(("login page", try await b.get("/login")))
            responses.append(("redirect", try await b.get("/account")))
            responses.append(("404", try await b.get("/no/such/page")))
            responses.append(("403", try await b.post("/account/language", [])))
            responses.append(("css", try await b.get("/static/faxgate.css")))
            try await b.login("anna")
            responses.append(("account", try await b.get("/account")))
            responses.append(("item 404", try await b.get("/test/item/Labor")))
            for (name, r) in responses {
                XCTAssertEqual(r.headers[.contentSecurityPolicy],
                               "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'", name)
                XCTAssertFalse((r.headers[.contentSecurityPolicy] ?? "").contains("unsafe-inline"), name)
                XCTAssertEqual(r.headers[.xContentTypeOptions], "nosniff", name)
                XCTAssertEqual(r.headers[HTTPField.Name("X-Frame-Options")!], "DENY", name)
                XCTAssertEqual(r.headers[HTTPField.Name("Referrer-Policy")!], "no-referrer", name)
                XCTAssertNil(r.headers[.strictTransportSecurity], "no HSTS over plain HTTP (\(name))")
            }
            XCTAssertEqual(responses[0].1.headers[.cacheControl], "no-store")
            XCTAssertEqual(responses[5].1.headers[.cacheControl], "no-store")
            XCTAssertEqual(responses[4].1.status, .ok)
            XCTAssertEqual(responses[4].1.headers[.contentType], "text/css; charset=utf-8")
            // No way out of the static folder.
            for path in ["/static/..%2FTemplates%2Flayout.mustache", "/static/../Templates/layout.mustache", "/static/%2e%2e/Package.swift"] {
                let r = try await b.get(path)
                XCTAssertNotEqual(r.status, .ok, path)
                XCTAssertFalse(Self.text(r).contains("{{"), path)
            }
            // Pages carry no inline script or style (CSP would block them).
            let html = Self.text(responses[5].1)
            XCTAssertFalse(html.contains("<script>") || html.contains("style=\"") || html.contains("onclick"))
            // Loopback plain HTTP: the live cookies have HttpOnly and SameSite=Strict, and no Secure.
            let cookies = responses[0].1.headers[values: .setCookie]
            XCTAssertFalse(cookies.isEmpty)
            for cookie in cookies {
                XCTAssertTrue(cookie.contains("HttpOnly"), cookie)
                XCTAssertTrue(cookie.contains("SameSite=Strict"), cookie)
                XCTAssertTrue(cookie.contains("Path=/"), cookie)
                XCTAssertFalse(cookie.contains("Secure"), cookie)
            }
        }
    }

    func testBrowsersGetErrorPagesInTheirLanguage() async throws {
        let f = try await Fixture()
        try await f.application().test(.live) { client in
            let b = Browser(client)
            b.extraHeaders[.accept] = "text/html,application/xhtml+xml"
            b.language = "de"
            let missing = try await b.get("/no/such/page")
            XCTAssertEqual(missing.status, .notFound)
            XCTAssertTrue(Self.text(missing).contains("id=\"error-page\""))
            XCTAssertTrue(Self.text(missing).contains("Nicht gefunden."))
            XCTAssertEqual(missing.headers[.contentSecurityPolicy], SecurityHeadersMiddleware.contentSecurityPolicy)
            let refused = try await b.post("/login", [("name", "x"), ("password", "y")])
            XCTAssertEqual(refused.status, .forbidden)
            XCTAssertTrue(Self.text(refused).contains("Das Formular ist abgelaufen"))
        }
    }

    func testMultipartFormsCarryTheTokenAndBodiesAreLimited() async throws {
        var web = WebSettings()
        web.maxUploadMB = 1
        let f = try await Fixture(web: web)
        let secret = SecondFactor.newSecret()
        try await f.user("root", role: .admin, totp: secret)
        try await f.application().test(.live) { client in
            let b = Browser(client)
            try await b.login("root")
            try await b.totp([("code", SecondFactor.code(secret: secret, counter: SecondFactor.counter()))])
            let token = try await b.csrf(on: "/account")
            func multipart(_ csrf: String?, fileBytes: Int) async throws -> TestResponse {
                let boundary = "----fgtest\(UUID().uuidString)"
                var body = ""
                if let csrf { body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n" }
                body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n"
                body += String(repeating: "x", count: fileBytes) + "\r\n--\(boundary)--\r\n"
                var h = b.headers()
                h[.contentType] = "multipart/form-data; boundary=\(boundary)"
                return try await client.execute(uri: "/test/admin-action", method: .post, headers: h, body: ByteBuffer(string: body))
            }
            let ok = try await multipart(token, fileBytes: 1000)
            XCTAssertEqual(ok.status, .ok)
            let missing = try await multipart(nil, fileBytes: 1000)
            XCTAssertEqual(missing.status, .forbidden)
            let wrong = try await multipart("not-the-token", fileBytes: 1000)
            XCTAssertEqual(wrong.status, .forbidden)
            // web.max_upload_mb: 1 → a 2 MB body is refused before any handler, and the context says 1 MiB.
            let big = try await multipart(token, fileBytes: 2 * 1024 * 1024)
            XCTAssertEqual(big.status, .contentTooLarge)
        }
        let audit = try await f.storage.auditEntries(limit: 10, beforeID: nil, actor: nil, action: "test.action")
        XCTAssertEqual(audit.count, 1, "only the multipart POST with the token acted")
    }

    func testCookieBuilderSetsSecureUnlessLoopbackPlainHTTP() {
        var loopback = WebSettings()
        loopback.listen = "127.0.0.1:8025"
        var public_ = WebSettings()
        public_.listen = "0.0.0.0:443"
        public_.tlsCertificate = "/etc/faxgate/cert.pem"
        public_.tlsKey = "/etc/faxgate/key.pem"
        var loopbackTLS = loopback
        loopbackTLS.tlsCertificate = "c"; loopbackTLS.tlsKey = "k"
        let cases: [(WebSettings, Bool, Bool)] = [
            (loopback, false, false), (loopback, true, true), (public_, false, true), (loopbackTLS, false, true),
        ]
        for (settings, https, secure) in cases {
            let cookie = WebCookies.make(WebCookies.session, "abc", settings: settings, https: https)
            XCTAssertEqual(cookie.secure, secure, "\(settings.listen) https=\(https)")
            XCTAssertTrue(cookie.httpOnly)
            XCTAssertEqual(cookie.sameSite, .strict)
            XCTAssertEqual(cookie.path, "/")
            XCTAssertEqual(cookie.description.contains("; Secure"), secure)
        }
    }

    func testForwardedHeadersBelievedOnlyFromTrustedProxies() async throws {
        let nobody = "nobody-" + UUID().uuidString.prefix(8).lowercased()
        for trusted in [false, true] {
            var web = WebSettings()
            if trusted { web.trustedProxies = ["127.0.0.1", "::1"] }
            let f = try await Fixture(web: web)
            try await f.application().test(.live) { client in
                let b = Browser(client)
                b.extraHeaders[HTTPField.Name("X-Forwarded-For")!] = "198.51.100.7, 203.0.113.9"
                b.extraHeaders[HTTPField.Name("X-Forwarded-Proto")!] = "https"
                let page = try await b.get("/login")
                let cookie = page.headers[values: .setCookie].first ?? ""
                XCTAssertEqual(cookie.contains("Secure"), trusted, cookie)
                XCTAssertEqual(page.headers[.strictTransportSecurity] != nil, trusted)
                try await b.login(nobody, "x")
            }
            let entry = try await f.storage.auditEntries(limit: 1, beforeID: nil, actor: nil, action: "login.failed").first
            if trusted {
                XCTAssertEqual(entry?.clientAddress, "203.0.113.9")
            } else {
                XCTAssertTrue(["127.0.0.1", "::1"].contains(entry?.clientAddress ?? ""), entry?.clientAddress ?? "nil")
            }
        }
        XCTAssertTrue(WebSessionMiddleware.isTrustedProxy("::ffff:10.0.0.1", ["10.0.0.1"]))
        XCTAssertFalse(WebSessionMiddleware.isTrustedProxy("10.0.0.2", ["10.0.0.1"]))
    }

    func testLanguageFromBrowserSwitchAndAccount() async throws {
        XCTAssertEqual(WebSessionMiddleware.acceptLanguage("de-DE,de;q=0.9,en;q=0.8"), "de")
        XCTAssertEqual(WebSessionMiddleware.acceptLanguage("fr-FR, en-GB;q=0.7, de;q=0.5"), "en")
        XCTAssertEqual(WebSessionMiddleware.acceptLanguage("en;q=0.3, de;q=0.9"), "de")
        XCTAssertEqual(WebSessionMiddleware.acceptLanguage("fr"), "en")
        let f = try await Fixture()
        try await f.user("anna")
        try await f.application().test(.live) { client in
            let b = Browser(client)
            b.language = "de-DE,de;q=0.9"
            let v53 = try await b.get("/login")
            XCTAssertTrue(Self.text(v53).contains("<html lang=\"de\">"))
            let v54 = try await b.get("/login")
            XCTAssertTrue(Self.text(v54).contains("Benutzername"))
            // The switch in the layout: a cookie that beats the browser.
            let switched = try await b.get("/language/en?back=/login")
            XCTAssertEqual(Self.location(switched), "/login")
            let v55 = try await b.get("/login")
            XCTAssertTrue(Self.text(v55).contains("User name"))
            // No open redirect through the switch.
            let v56 = try await b.get("/language/de?back=//evil.example/x")
            XCTAssertEqual(Self.location(v56), "/")
            // A logged-in user's stored language wins.
            try await b.login("anna")
            let token = try await b.csrf(on: "/account")
            try await b.post("/account/language", [("csrf", token), ("language", "en")])
            b.cookies[WebCookies.language] = "de"
            let v57 = try await b.get("/account")
            XCTAssertTrue(Self.text(v57).contains("<html lang=\"en\">"))
        }
    }

    // MARK: Configuration and templates

    func testConfigCheckRefusesPlainHTTPBeyondLoopbackAndBrokenTLSFiles() throws {
        let dir = try TemporaryDirectory("web-config")
        func problems(_ web: String) -> [String] {
            let yaml = """
                spool_directory: /tmp/x
                smtp: {host: localhost, port: 25, security: none}
                mail: {from: fax@example.com}
                extensions:
                  - {name: Empfang, numbers: ["100"], email: [empfang@example.com]}
                web:
                \(web.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
                """
            do { _ = try ConfigLoader.parse(yaml); return [] } catch { return error.issues.map(\.description) }
        }
        XCTAssertEqual(problems("listen: 127.0.0.1:8025"), [])
        XCTAssertEqual(problems("listen: \"[::1]:8025\""), [])
        XCTAssertTrue(problems("listen: 0.0.0.0:8025").contains { $0.contains("web.listen") && $0.contains("loopback") }, "\(problems("listen: 0.0.0.0:8025"))")
        let cert = dir.path + "/cert.pem", key = dir.path + "/key.pem"
        try "cert".write(toFile: cert, atomically: true, encoding: .utf8)
        try "key".write(toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        XCTAssertTrue(problems("listen: 0.0.0.0:8025\ntls_certificate: \(cert)").contains { $0.contains("tls_key") })
        XCTAssertEqual(problems("listen: 0.0.0.0:8025\ntls_certificate: \(cert)\ntls_key: \(key)"), [])
        XCTAssertTrue(problems("listen: 0.0.0.0:8025\ntls_certificate: \(cert)\ntls_key: \(dir.path)/missing.pem")
            .contains { $0.contains("tls_key") && $0.contains("does not exist") })
        chmod(key, 0o644)
        XCTAssertTrue(problems("listen: 0.0.0.0:8025\ntls_certificate: \(cert)\ntls_key: \(key)").contains { $0.contains("world-readable") })
        XCTAssertTrue(problems("trusted_proxies: [proxy.example.com]").contains { $0.contains("trusted_proxies") })
        XCTAssertTrue(problems("max_upload_mb: 0").contains { $0.contains("max_upload_mb") })
    }

    func testHTTPSWithConfiguredCertificate() async throws {
        let dir = try TemporaryDirectory("web-tls")
        let cert = dir.path + "/cert.pem", key = dir.path + "/key.pem"
        let gen = try runTool("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                   "-days", "1", "-subj", "/CN=localhost"], check: false)
        XCTAssertEqual(gen.status, 0, gen.stderrText)
        var web = WebSettings()
        web.listen = "127.0.0.1:8443"
        web.tlsCertificate = cert
        web.tlsKey = key
        let f = try await Fixture(web: web)
        try await f.application().test(.live) { client in
            let port = try XCTUnwrap(client.port)
            let curl = try runTool("/usr/bin/curl", ["-sk", "-D", "-", "-o", "/dev/null", "https://localhost:\(port)/login"], check: false)
            let head = curl.stdoutText
            XCTAssertEqual(curl.status, 0, curl.stderrText)
            XCTAssertTrue(head.contains("HTTP/1.1 200"), head)
            XCTAssertTrue(head.lowercased().contains("strict-transport-security: max-age=31536000"), head)
            XCTAssertTrue(head.contains("; Secure"), head)
            let plain = try runTool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:\(port)/login"], check: false)
            XCTAssertNotEqual(plain.stdoutText, "200", "no plain HTTP on the TLS port")
        }
    }

    func testStringsCoverEveryTemplateKeyAndNestWithoutClashes() throws {
        var seen: [String: String] = [:]
        for area in Strings.areas {
            for (key, pair) in area {
                XCTAssertNil(seen[key], "duplicate key \(key)")
                seen[key] = key
                XCTAssertFalse(pair.de.isEmpty || pair.en.isEmpty, key)
            }
        }
        let keys = Set(seen.keys)
        for key in keys {
            XCTAssertFalse(keys.contains { $0.hasPrefix(key + ".") }, "\(key) is also a prefix of another key (mustache cannot reach both)")
        }
        let dir = try XCTUnwrap(PageRenderer.templateDirectory)
        let pattern = try NSRegularExpression(pattern: #"\{\{[#^/]?t\.([a-z0-9_.]+)\}\}"#)
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".mustache") {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let key = String(text[Range(m.range(at: 1), in: text)!])
                XCTAssertTrue(keys.contains(key), "\(file): {{t.\(key)}} has no string")
            }
        }
        // Every template parses.
        _ = PageRenderer.shared
    }
}
