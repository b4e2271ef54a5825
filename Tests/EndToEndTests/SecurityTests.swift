import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Attacks on "who may send", each through the real path: SMTP to the test Postfix (whose own Received headers and
/// RFC 8601 verdict are real: contrib/testservers.sh strips sender-written verdicts in hop 1 and writes
/// `Authentication-Results: mx.example.test; spf=pass|fail smtp.mailfrom=<envelope domain>` in hop 2), Dovecot LMTP,
/// IMAP to `faxgate serve`. Each asserts that nothing was dialled, no job exists, nothing went to the forged
/// address (its mailbox, the outbox and the Postfix log), and that the admin heard about it where required.
final class SecurityTests: XCTestCase {
    static let admin = "admin@example.test"

    func harness(replies: String? = nil) throws -> GatewayHarness {
        try GatewayHarness(.init(language: "de", mailToFax: true, allowedSenders: ["alice@example.test"], requireAuthentication: "dkim_or_spf",
                                 adminAddress: Self.admin, replies: replies))
    }

    /// A plain order mail; `headers` are written by the sender, above From.
    func order(from: String, subject: String, to: String = "0301234567@fax.example.test", headers: [String] = []) -> [UInt8] {
        let h = headers.map { $0 + "\r\n" }.joined()
        return Array(("\(h)From: \(from)\r\nTo: \(to)\r\nSubject: \(subject)\r\nMessage-ID: <\(UUID().uuidString)@sender.example>\r\n"
                      + "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBitte faxen.\r\n").utf8)
    }

    /// SMTP to the test Postfix with an envelope sender of our choosing (what an attacker controls).
    func send(_ h: GatewayHarness, _ message: [UInt8], mailFrom: String, rcpt: String = "0301234567@fax.example.test",
              port: Int? = nil) throws {
        let file = h.dir.path + "/attack-\(UUID().uuidString.prefix(6)).eml"
        try Data(message).write(to: URL(fileURLWithPath: file))
        try runTool(MailServers.python3, ["-c", """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), timeout=30)
            s.sendmail(sys.argv[3], [sys.argv[4]], open(sys.argv[1], 'rb').read())
            s.quit()
            """, file, String(port ?? h.mail.smtpPlainPort), mailFrom, rcpt])
    }

    /// Nothing dialled, no job, no mail to `forged` (mailbox, outbox, Postfix log).
    func assertNothingHappened(_ h: GatewayHarness, forged: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        // Let the outbox and Postfix finish whatever they would do.
        _ = try await h.poll("outbox", timeout: 20, read: { [h.outboxPending()] }) { $0.first == 0 }
        try await Task.sleep(for: .seconds(2))
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty, "nothing may be dialled", file: file, line: line)
        XCTAssertEqual(try h.queue().count, 0, "no job", file: file, line: line)
        XCTAssertEqual(try h.mail.fetch(user: forged, expect: 0, timeoutSeconds: 1).count, 0, "nothing in \(forged)'s mailbox", file: file, line: line)
        let sent = (try? FileManager.default.contentsOfDirectory(atPath: h.spool + "/outbox/sent")) ?? []
        XCTAssertFalse(sent.contains { $0.hasPrefix("refusal-") }, "no refusal reply in the outbox: \(sent)", file: file, line: line)
        let postfixLog = (try? String(contentsOfFile: h.mail.environment["POSTFIX_LOG"] ?? "", encoding: .utf8)) ?? ""
        XCTAssertFalse(postfixLog.contains("to=<\(forged)>"), "Postfix delivered nothing to \(forged)", file: file, line: line)
    }

    /// The admin's digest (one mail), its body.
    func adminDigest(_ h: GatewayHarness) throws -> ParsedMail {
        let work = try TemporaryDirectory("digest")
        let mails = try h.mail.fetch(user: Self.admin, expect: 1, timeoutSeconds: 30).map { try ParsedMail($0, in: work) }
        XCTAssertEqual(mails.count, 1, "one digest per period")
        return try XCTUnwrap(mails.first)
    }

    // MARK: Forged senders

    func testForgedFromOfAnAllowedSender_verdictFailsForTheRealEnvelope_isRefusedSilently_andTheAdminHearsOfIt() async throws {
        let h = try harness()
        defer { h.shutdown() }
        try await h.startGateway()
        // The attacker writes alice's From, a verdict "from our MTA" (stripped by hop 1), a comment and a quoted value
        // that smuggle a pass under another authserv-id — and sends from their own domain, which SPF fails.
        try send(h, order(from: "Alice <alice@example.test>", subject: "forged alice", headers: [
            "Authentication-Results: mx.example.test; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=example.test",
            "Authentication-Results: evil.example (mx.example.test; dkim=pass header.d=example.test) ; dkim=pass header.d=example.test",
            #"Authentication-Results: evil.example; dkim=fail header.d="x; spf=pass smtp.mailfrom=example.test""#,
            "Received: from x by mx.example.test (Postfix) with ESMTP id FAKE; Tue, 1 Dec 2026 09:00:00 +0000",
        ]), mailFrom: "mallory@evil.example")

        let intakes = try await h.waitForIntakes { $0.first?.state == .rejected }
        XCTAssertEqual(intakes.first?.reply, .suppressed)
        XCTAssertEqual(intakes.first?.replyAddress, "alice@example.test")
        XCTAssertFalse(intakes.first?.adminAlert ?? true, "hop 1 stripped the forged verdict: no MTA alert")
        XCTAssertTrue(intakes.first?.detail?.contains("could not be verified") == true, intakes.first?.detail ?? "")
        try await assertNothingHappened(h, forged: "alice@example.test")
        let digest = try adminDigest(h)
        XCTAssertTrue(digest.body.contains("ohne Antwort (Absender nicht bestätigt): 1"), digest.body)
        XCTAssertTrue(digest.body.contains("a…@example.test: 1"), "the sender, redacted: \(digest.body)")
        XCTAssertFalse(digest.body.contains("alice@"), "never the full address")
    }

    func testSenderWrittenVerdict_throughAnMTAThatDoesNotStrip_isRefused_andTheAdminIsAlerted() async throws {
        let h = try harness()
        defer { h.shutdown() }
        try await h.startGateway()
        // Through an entry that neither strips nor writes a verdict: the only "mx.example.test" verdict in the mail
        // is the sender's, below the entry's Received line.
        let port = try XCTUnwrap(Int(h.mail.environment["SMTP_UNSTRIPPED_PORT"] ?? ""))
        try send(h, order(from: "alice@example.test", subject: "unstripped", headers: [
            "Authentication-Results: mx.example.test; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=example.test",
        ]), mailFrom: "alice@example.test", port: port)

        let intakes = try await h.waitForIntakes { $0.first?.state == .rejected }
        XCTAssertEqual(intakes.first?.reply, .suppressed)
        XCTAssertEqual(intakes.first?.adminAlert, true)
        try await assertNothingHappened(h, forged: "alice@example.test")
        let digest = try adminDigest(h)
        XCTAssertTrue(digest.body.contains("ACHTUNG: 1 Nachricht(en)"), digest.body)
        XCTAssertTrue(h.gatewayLog().contains("the MTA did not strip an Authentication-Results header"), "logged as an error")
    }

    func testStrangerWithSmuggledPasses_isRefused_andNotAnswered() async throws {
        let h = try harness()
        defer { h.shutdown() }
        try await h.startGateway()
        // bob is on no allow list and sends from a domain SPF fails: his From may be anyone's, so no reply at all.
        try send(h, order(from: "bob@example.test", subject: "stranger", headers: [
            "Authentication-Results: evil.example; dkim=neutral (dkim=pass header.d=example.test) header.d=example.test",
        ]), mailFrom: "spam@evil.example")
        let intakes = try await h.waitForIntakes { $0.first?.state == .rejected }
        XCTAssertEqual(intakes.first?.reply, .suppressed)
        try await assertNothingHappened(h, forged: "bob@example.test")
        XCTAssertTrue(try adminDigest(h).body.contains("b…@example.test: 1"))
    }

    // MARK: Who is answered

    func testProvenSender_isFaxed_andTheVerdictSitsAboveThePostfixReceived() async throws {
        let h = try harness()
        defer { h.shutdown() }
        try await h.startGateway()
        try send(h, order(from: "Alice <alice@example.test>", subject: "echt"), mailFrom: "alice@example.test")
        let jobs = try await h.waitForQueue(timeout: 60) { $0.first?.state == .done }
        XCTAssertEqual(jobs.map(\.subject), ["echt"])
        XCTAssertEqual(h.simulator.outgoingCalls.map(\.calledNumber), ["0301234567"])
        // Where Postfix put its PREPENDed verdict, as the gateway saw it: above Postfix's own Received header.
        let processed = try h.mail.fetch(user: h.mail.user, mailbox: "Processed", timeoutSeconds: 10)
        let header = String(decoding: try XCTUnwrap(processed.first), as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        let verdict = try XCTUnwrap(header.range(of: "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=example.test"))
        let hop2 = try XCTUnwrap(header.range(of: "by verdict.example.test (Postfix)"))
        let entry = try XCTUnwrap(header.range(of: "by mx.example.test (Postfix)"))
        XCTAssertTrue(verdict.lowerBound < hop2.lowerBound && hop2.lowerBound < entry.lowerBound, header)
    }

    func testProvenStranger_isToldWhy_andRepliesAreLimitedPerRecipient() async throws {
        let h = try harness(replies: "{max_per_recipient_per_hour: 2}")
        defer { h.shutdown() }
        let work = try TemporaryDirectory("limit")
        try await h.startGateway()
        // bob's own domain passes SPF: his address is proven, so he may hear why he was refused — twice an hour.
        for n in 0..<3 {
            try send(h, order(from: "bob@example.test", subject: "bob \(n)"), mailFrom: "bob@example.test")
            _ = try await h.waitForIntakes { $0.count == n + 1 && $0.allSatisfy { $0.state == .rejected } }
        }
        let intakes = try await h.waitForIntakes { $0.count == 3 }
        XCTAssertEqual(intakes.reversed().map(\.reply), [.sent, .sent, .rateLimited])
        let replies = try h.mail.fetch(user: "bob@example.test", expect: 2, timeoutSeconds: 30).map { try ParsedMail($0, in: work) }
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(try h.mail.fetch(user: "bob@example.test", expect: 2, timeoutSeconds: 5).count, 2, "the third is not answered")
        XCTAssertTrue(replies.allSatisfy { $0.headers["Subject"]?.hasPrefix("Fax nicht gesendet: bob") == true }, "\(replies.map { $0.headers["Subject"] ?? "" })")
        XCTAssertTrue(replies.allSatisfy { $0.body.contains("darf über dieses Gateway keine Faxe senden") }, replies.first?.body ?? "")
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty)
        XCTAssertTrue(try adminDigest(h).body.contains("ohne Antwort (Antwortlimit erreicht): 1"))
    }
}

extension GatewayHarness {
    /// The intake ledger as `faxgate intake --json` lists it (newest first).
    func intakes() throws -> [IntakeRecord] {
        let out = try runTool(Self.faxgateBinary, ["intake", "--json", "-c", configPath])
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try out.stdoutText.split(separator: "\n").map { try decoder.decode(IntakeRecord.self, from: Data($0.utf8)) }
    }

    func waitForIntakes(timeout: TimeInterval = 40, _ condition: ([IntakeRecord]) -> Bool) async throws -> [IntakeRecord] {
        try await poll("intake", timeout: timeout, read: intakes, condition)
    }

    /// Messages still waiting in the outbox.
    func outboxPending() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool + "/outbox")) ?? []).filter { $0.hasSuffix(".json") }.count
    }
}
