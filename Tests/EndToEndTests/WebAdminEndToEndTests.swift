import CapiSimulator
import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// Issue 9, the admin pages against `faxgate serve` over real HTTP (curl), with the CAPI simulator behind
/// libcapi20, real Postfix/Dovecot and SQLite: the mail of a received fax is sent again through the running
/// gateway's pipeline and outbox and arrives a second time at Dovecot; "retry now" moves a job waiting three
/// minutes after a busy line to now, and the queue dials it; the dashboard shows the line and the queue; the log
/// page finds the call by id and shows no caller number; each action is in the audit trail with actor and address.
///
/// The admin's session is written into the gateway's database as the login pages write it (password and TOTP
/// done); the login itself is proven in the account and browser tests.
final class WebAdminEndToEndTests: XCTestCase {
    typealias Client = WebUserEndToEndTests.Client

    /// A logged-in session for `user` in the running gateway's database; returns the Cookie header and CSRF token.
    static func session(_ storage: SQLiteStorage, _ user: WebUser) async throws -> (cookie: String, csrf: String) {
        let id = UUID().uuidString + UUID().uuidString, csrf = UUID().uuidString
        let hash = try runTool("/bin/sh", ["-c", "printf %s \"$1\" | sha256sum", "sh", id]).stdoutText.prefix(64)
        try await storage.insertSession(WebSession(idHash: String(hash), userID: user.id!, createdAt: Date(), lastSeenAt: Date(),
                                                   secondFactorVerified: true, csrfToken: csrf, clientAddress: "127.0.0.1"))
        return ("Cookie: fg_session=\(id)", csrf)
    }

    func testAdmin_resendMailArrivesTwice_retryNowDials_dashboardLogsAudit() async throws {
        // Busy is retried after the default three minutes: only "retry now" can make the second try come at once.
        let h = try GatewayHarness(.init(language: "en", numberLine: "{country_code: \"49\", area_code: \"30\"}"))
        defer { h.shutdown() }
        try await h.startGateway()
        do {
            try await scenario(h)
        } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(5000)))
            throw error
        }
    }

    func scenario(_ h: GatewayHarness) async throws {
        let work = try TemporaryDirectory("web-admin-e2e")
        let deadline = Date().addingTimeInterval(30)
        while await BrowserEndToEndTests.get(h.webURL + "/login") == nil {
            guard Date() < deadline else { throw ToolError(description: "faxgate serve does not answer on \(h.webURL)") }
            try await Task.sleep(for: .milliseconds(200))
        }
        let storage = try SQLiteStorage(path: h.spool + "/faxgate.sqlite")
        let chef = try await storage.insertUser(WebUser(name: "chef", role: .admin, extensions: [], passwordHash: "-", mustChangePassword: false,
                                                        totpSecret: Array(repeating: 3, count: 20)))
        let anna = try await storage.insertUser(WebUser(name: "anna", role: .user, extensions: ["Empfang"], passwordHash: "-",
                                                        mustChangePassword: false))
        let (adminCookie, csrf) = try await Self.session(storage, chef)
        let (userCookie, userCSRF) = try await Self.session(storage, anna)
        let client = Client(base: h.webURL, jar: work.path + "/jar", work: work.path)
        func get(_ path: String, _ cookie: String = adminCookie) throws -> Client.Answer { try client.request(path, headers: [cookie]) }
        func post(_ path: String, _ cookie: String = adminCookie, _ token: String = csrf) throws -> Client.Answer {
            try client.request(path, method: "POST", form: [("csrf", token)], headers: [cookie])
        }

        // An office user is refused every admin page of the running server.
        for path in ["/admin", "/admin/journal", "/admin/queue", "/admin/users", "/admin/audit", "/admin/logs"] {
            XCTAssertEqual(try get(path, userCookie).status, 403, path)
        }

        // A fax arrives through libcapi20 and is mailed once.
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        var call = SimulatedFaxCall(from: "301112223", to: "100", document: source.sff)
        call.callingTypeAndPlan = 0x21
        let awaited1 = try await h.simulator.placeFaxCall(call).accepted
        XCTAssertTrue(awaited1)
        let calls = try await h.waitForJournal(timeout: 90) { $0.contains { $0.state == .mailed } }
        let callID = try XCTUnwrap(calls.first { $0.state == .mailed }?.id)
        let first = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)
        XCTAssertEqual(first.count, 1)

        // A user cannot ask for it; the admin can: the same fax, mailed again by the gateway, arrives a second time.
        XCTAssertEqual(try post("/admin/calls/\(callID)/resend-mail", userCookie, userCSRF).status, 403)
        let resend = try post("/admin/calls/\(callID)/resend-mail")
        XCTAssertEqual(resend.status, 303, resend.text)
        XCTAssertEqual(resend.headers["location"], "/admin/calls/\(callID)?done=mail_resent")
        let both = try h.mail.fetch(user: h.mail.user, expect: 2, timeoutSeconds: 30)
        XCTAssertEqual(both.count, 2, "the mail arrived a second time")
        let mails = try both.map { try ParsedMail($0, in: work) }
        XCTAssertEqual(mails[0].headers["Subject"], mails[1].headers["Subject"])
        XCTAssertNotEqual(mails[0].headers["Message-ID"], mails[1].headers["Message-ID"], "a new message, not a duplicate delivery")
        XCTAssertEqual(mails.map { $0.headers["X-Faxgate-Reference"] }, ["\(callID)", "\(callID)"])
        XCTAssertEqual(mails.map { $0.attachments.filter { $0.contentType == "application/pdf" }.count }, [1, 1])
        _ = try await h.waitForJournal { $0.first { $0.id == callID }?.state == .mailed }
        let events = try await storage.events(callID: callID).map(\.text)
        XCTAssertTrue(events.contains { $0.hasPrefix("mail queued again") && $0.contains("web:chef") }, "\(events)")
        XCTAssertTrue(try get("/admin/calls/\(callID)?done=mail_resent").text.contains("The mail is queued again."))

        // The admin gives Empfang another address (settings page); mailed again, the fax goes to the address it has now.
        let edit = try get("/admin/extensions/0").text
        let versionMatch = try XCTUnwrap(edit.range(of: #"name="version" value="\d+""#, options: .regularExpression), edit)
        let version = String(edit[versionMatch].filter(\.isNumber))
        let saved = try client.request("/admin/extensions/0", method: "POST", form: [
            ("csrf", csrf), ("version", version), ("name", "Empfang"), ("numbers", "100, 120-129"), ("email", h.mail.users[1]),
            ("format_pdf", "on"), ("language", "en"), ("station_id", "+49 30 9999100"), ("headline", "Faxgate Test"),
            ("pdf_page_size", "a4"), ("fine", "on"),
        ], headers: [adminCookie])
        XCTAssertEqual(saved.status, 303, saved.text)
        XCTAssertTrue(try get("/admin/calls/\(callID)").text.contains(h.mail.users[1]), "the detail names the current address")
        try await Task.sleep(for: .seconds(1.1))  // the outbox id of a request carries its second
        XCTAssertEqual(try post("/admin/calls/\(callID)/resend-mail").headers["location"], "/admin/calls/\(callID)?done=mail_resent")
        let moved = try h.mail.fetch(user: h.mail.users[1], expect: 1, timeoutSeconds: 30)
        XCTAssertEqual(try moved.map { try ParsedMail($0, in: work).headers["X-Faxgate-Reference"] }, ["\(callID)"])
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 2, timeoutSeconds: 5).count, 2, "nothing more to the old address")

        // The log page finds the call by its id, and shows no caller number.
        let logs = try get("/admin/logs?q=\(callID)")
        XCTAssertEqual(logs.status, 200)
        let shown = try XCTUnwrap(WebAdminEndToEndTests.element("log", in: logs.text), logs.text)
        XCTAssertTrue(shown.contains("[\(callID)]"), shown)
        XCTAssertGreaterThanOrEqual(shown.split(separator: "\n").count, 3, "answering, ended, mailed … of that call")
        for raw in ["301112223", "1112223", "030 1112223"] { XCTAssertFalse(logs.text.contains(raw), "caller \(raw) in the log page") }

        // A job to a busy line waits three minutes; "retry now" makes the queue dial again at once.
        h.simulator.setOutgoingBehaviour(for: "0301111111", [.busy, .answer()])
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        try runTool(GatewayHarness.faxgateBinary, ["send", "-c", h.configPath, "--to", "030 1111111", pdf])
        let waiting = try await h.waitForQueue(timeout: 60) { $0.first?.state == .deferred }
        let job = try XCTUnwrap(waiting.first)
        XCTAssertEqual(job.tries, 1)
        XCTAssertGreaterThan(job.nextAttemptAt.timeIntervalSinceNow, 120, "busy waits three minutes")
        XCTAssertEqual(try post("/admin/jobs/\(job.id!)/retry", userCookie, userCSRF).status, 403)
        let queuePage = try get("/admin/queue")
        XCTAssertTrue(queuePage.text.contains("action=\"/admin/jobs/\(job.id!)/retry\""), "a waiting job offers retry now")
        let retry = try post("/admin/jobs/\(job.id!)/retry")
        XCTAssertEqual(retry.headers["location"], "/admin/queue?done=retried")
        let sent = try await h.waitForQueue(timeout: 40) { $0.first?.state == .done }
        XCTAssertEqual(sent.first?.tries, 2)
        // Finished now: the same action is refused and changes nothing.
        XCTAssertEqual(try post("/admin/jobs/\(job.id!)/retry").headers["location"], "/admin/queue?error=not_waiting")

        // Cancel a job waiting for its send time, and resend the finished one, from the queue page.
        try runTool(GatewayHarness.faxgateBinary, ["send", "-c", h.configPath, "--to", "030 2222222", "--at", "2099-01-01T08:00:00Z", pdf])
        let two = try await h.waitForQueue { $0.count == 2 }
        let later = try XCTUnwrap(two.first { $0.id != job.id })
        XCTAssertEqual(try post("/admin/jobs/\(later.id!)/cancel").headers["location"], "/admin/queue?done=canceled")
        _ = try await h.waitForQueue { $0.first { $0.id == later.id }?.state == .canceled }
        let again = try post("/admin/jobs/\(job.id!)/resend")
        XCTAssertEqual(again.status, 303, again.text)
        let queued = try await h.waitForQueue { $0.count == 3 }
        let copy = try XCTUnwrap(queued.first { $0.id != job.id && $0.id != later.id })
        XCTAssertEqual(again.headers["location"], "/admin/jobs/\(copy.id!)?done=resent")
        XCTAssertEqual(copy.number, job.number)

        // The dashboard: the line registered, today's calls, the queue by state, the outbox.
        let dashboard = try get("/admin")
        XCTAssertEqual(dashboard.status, 200, dashboard.text)
        for part in ["id=\"lines\"", ">registered<", "id=\"today\"", "id=\"queue\"", "id=\"outbox\"", "id=\"disk\""] {
            XCTAssertTrue(dashboard.text.contains(part), "dashboard lacks \(part)")
        }

        // Every action in the audit trail with who and from where.
        let audit = try get("/admin/audit").text
        XCTAssertTrue(audit.contains("<td>chef</td><td>127.0.0.1</td><td>call.resend_mail</td><td>call \(callID)</td>"), audit)
        XCTAssertTrue(audit.contains("<td>chef</td><td>127.0.0.1</td><td>job.retry_now</td><td>job \(job.id!)</td>"), audit)
        XCTAssertTrue(audit.contains("<td>chef</td><td>127.0.0.1</td><td>job.cancel</td><td>job \(later.id!)</td>"), audit)
        XCTAssertTrue(audit.contains("<td>chef</td><td>127.0.0.1</td><td>job.resend</td><td>job \(job.id!)</td>"), audit)
    }

    static func element(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\""), let close = html[start.upperBound...].firstIndex(of: ">"),
              let end = html[close...].range(of: "</") else { return nil }
        return String(html[html.index(after: close)..<end.lowerBound])
    }
}
