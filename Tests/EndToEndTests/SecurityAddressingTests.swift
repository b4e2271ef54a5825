import CapiSimulator
import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// Issue 8, points 4–6, as an attacker or a hurried user would try them, through the real path: Dovecot
/// mailbox → IMAPS intake → `faxgate serve` → libcapi20 → the CAPI simulator, and the CLI through the drop
/// directory. Every attack asserts that nothing was dialled.
final class SecurityAddressingTests: XCTestCase {
    /// Puts a raw message straight into the watched mailbox, as IMAP APPEND would (no MTA rewriting it).
    func deliver(_ h: GatewayHarness, _ raw: String) throws {
        let conf = try XCTUnwrap(h.mail.environment["DOVECOT_CONF"])
        try runTool("doveadm", ["-c", conf, "save", "-u", "fax@example.test", "-m", "INBOX"], stdin: Data(raw.utf8))
    }

    func order(subject: String, to: String) -> String {
        "From: alice@example.test\r\nTo: \(to)\r\nSubject: \(subject)\r\nMessage-ID: <\(UUID().uuidString)@example.test>\r\n"
            + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBitte faxen.\r\n"
    }

    func testSubjectAndAddressAttacks_areRefusedWithTheRightForm_andNothingIsDialled() async throws {
        let h = try GatewayHarness(.init(mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("sec-addr")
        try await h.startGateway()

        // (Subject, To, what the German reply must say). Before, the first three dialled a longer number.
        let attacks: [(String, String, String)] = [
            ("Fax an 030 1234567 3 Seiten", "fax@example.test", "weitere Ziffern (3)"),
            ("Fax an 0301234567 23.11.2026 Befund", "fax@example.test", "weitere Ziffern (23.11.2026)"),
            ("Fax an 030 1234567 2026 11 23 Befund", "fax@example.test", "weitere Ziffern (2026 11 23)"),
            ("Arabisch", "030123\u{0664}567@fax.example.test", "U+0664 (ARABIC-INDIC DIGIT FOUR)"),
            ("Nullbreite", "0301234\u{200B}567@fax.example.test", "U+200B (ZERO WIDTH SPACE)"),
            ("Fax an 0\u{0301}30 1234567: Akzent", "fax@example.test", "U+0301 (COMBINING ACUTE ACCENT)"),
        ]
        for (subject, to, _) in attacks { try deliver(h, order(subject: subject, to: to)) }
        let replies = try h.mail.fetch(user: "alice@example.test", expect: attacks.count, timeoutSeconds: 60).map { try ParsedMail($0, in: work) }
        XCTAssertEqual(replies.count, attacks.count, "\(replies.map { $0.headers["Subject"] ?? "" })")
        for (subject, to, reason) in attacks {
            let reply = try XCTUnwrap(replies.first { $0.body.contains(reason) },
                                      "no reply says '\(reason)' for \(subject.debugDescription): \(replies.map(\.body))")
            XCTAssertTrue(reply.headers["Subject"]?.hasPrefix("Fax nicht gesendet") == true, reply.headers["Subject"] ?? "")
            if to == "fax@example.test" {
                XCTAssertTrue(reply.body.contains("„Fax an 030 1234567: Befund“"), "the reply shows how to write it:\n\(reply.body)")
            }
        }
        try await Task.sleep(for: .seconds(1))
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty, "nothing was dialled: \(h.simulator.outgoingCalls.map(\.calledNumber))")
        XCTAssertTrue(try h.queue().isEmpty, "no job was made")

        // The grammar still takes what is clear, and dials exactly what was written.
        try deliver(h, order(subject: "Fax an 030 1234567: Befund Müller", to: "fax@example.test"))
        let jobs = try await h.waitForQueue(timeout: 60) { $0.first?.state == .done }
        XCTAssertEqual(jobs.map(\.number), ["+49301234567"])
        XCTAssertEqual(jobs.first?.subject, "Befund Müller")
        XCTAssertEqual(h.simulator.outgoingCalls.map(\.calledNumber), ["0301234567"])
    }

    /// The CLI: blocked and Unicode numbers, a resend after the number was blocked, a queued job whose number
    /// was blocked before its time came, and drop requests with a symbolic link or another user's file.
    func testCLISendResendAndDropDirectory_goThroughThePolicy_andLinksAreNeverFollowed() async throws {
        let h = try GatewayHarness(.init(language: "en", mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("sec-cli")
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        try await h.startGateway()
        let bin = GatewayHarness.faxgateBinary

        let premium = try runTool(bin, ["send", "-c", h.configPath, "--to", "0900 123456", pdf], check: false)
        XCTAssertEqual(premium.status, 1)
        XCTAssertTrue(premium.stdoutText.contains("blocked"), premium.stdoutText)
        let accent = try runTool(bin, ["send", "-c", h.configPath, "--to", "0\u{0301}301234567", pdf], check: false)
        XCTAssertEqual(accent.status, 1, accent.stdoutText)
        XCTAssertTrue(accent.stdoutText.contains("U+0301"), accent.stdoutText)
        let nbsp = try runTool(bin, ["send", "-c", h.configPath, "--to", "030\u{00A0}1234567", pdf], check: false)
        XCTAssertEqual(nbsp.status, 1, nbsp.stdoutText)
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty)

        // A symbolic link to a file the daemon could read, and a file of another user, as request documents.
        let secret = work.path + "/patient.pdf"
        try FileManager.default.copyItem(atPath: pdf, toPath: secret)
        let drop = h.spool + "/drop"
        func request(_ id: String, files: [String]) throws {
            var r = DropRequest(command: .send)
            r.numbers = ["0301234567"]
            r.extensionName = "Empfang"
            r.files = files.map { .init(name: "brief.pdf", contentType: "application/pdf", stored: $0) }
            try JSONEncoder().encode(r).write(to: URL(fileURLWithPath: "\(drop)/\(id).json.tmp"))
            XCTAssertEqual(rename("\(drop)/\(id).json.tmp", "\(drop)/\(id).json"), 0)
        }
        func answer(_ id: String) async throws -> String {
            let path = "\(drop)/\(id).answer"
            for _ in 0..<150 {
                if let data = FileManager.default.contents(atPath: path) { return String(decoding: data, as: UTF8.self) }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw ToolError(description: "no answer for \(id)\n\(h.gatewayLog())")
        }
        XCTAssertEqual(symlink(secret, "\(drop)/1000-1.0"), 0)
        try request("1000-1", files: ["1000-1.0"])
        let linked = try await answer("1000-1")
        XCTAssertTrue(linked.hasPrefix("refused:") && linked.contains("symbolic link"), linked)
        XCTAssertTrue(FileManager.default.fileExists(atPath: secret), "the link was removed, not its target")

        try FileManager.default.copyItem(atPath: pdf, toPath: "\(drop)/1000-2.0")
        XCTAssertEqual(chown("\(drop)/1000-2.0", 65534, 65534), 0)
        try request("1000-2", files: ["1000-2.0"])
        let foreign = try await answer("1000-2")
        XCTAssertTrue(foreign.hasPrefix("refused:") && foreign.contains("not to the submitting user"), foreign)

        XCTAssertEqual(symlink(h.dir.path + "/elsewhere.json", "\(drop)/1000-3.json"), 0)
        let linkedRequest = try await answer("1000-3")
        XCTAssertTrue(linkedRequest.hasPrefix("refused:") && linkedRequest.contains("symbolic link"), linkedRequest)

        let storage = try SQLiteStorage(path: h.spool + "/faxgate.sqlite", readOnly: true)
        let journaled = try await storage.intakes(in: Set(IntakeRecord.State.allCases)).filter { $0.source == "drop" }
        XCTAssertEqual(journaled.filter { $0.state != .accepted }.count, 6, "every refused request is journaled: \(journaled.map { $0.detail ?? "" })")
        XCTAssertEqual(journaled.filter { $0.detail?.contains("symbolic link") == true }.count, 2)
        XCTAssertEqual(journaled.filter { $0.detail?.contains("not to the submitting user") == true }.count, 1)
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty, "no attack dialled")

        // A fax that goes out, one queued for later, then the number's range is blocked and the gateway restarts.
        let sent = try runTool(bin, ["send", "-c", h.configPath, "--to", "030 1234567", pdf])
        XCTAssertTrue(sent.stdoutText.hasPrefix("queued: job #1 to +49301234567"), sent.stdoutText)
        _ = try await h.waitForQueue { $0.first { $0.id == 1 }?.state == .done }
        let soon = ISO8601DateFormatter().string(from: Date().addingTimeInterval(8))
        let later = try runTool(bin, ["send", "-c", h.configPath, "--to", "030 1239999", "--at", soon, pdf])
        XCTAssertTrue(later.stdoutText.contains("job #2"), later.stdoutText)
        h.stopGateway()
        let config = try String(contentsOfFile: h.configPath, encoding: .utf8)
        let blocked = config.replacingOccurrences(of: "policy: {max_pages_per_sender_per_day: 500}",
                                                  with: "policy: {max_pages_per_sender_per_day: 500, deny_prefixes: [\"+4930123\"]}")
        XCTAssertNotEqual(blocked, config)
        try blocked.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        try await h.startGateway()

        let resent = try runTool(bin, ["resend", "-c", h.configPath, "1"], check: false)
        XCTAssertEqual(resent.status, 1, resent.stdoutText)
        XCTAssertTrue(resent.stdoutText.hasPrefix("refused: resend of job #1:") && resent.stdoutText.contains("+4930123"), resent.stdoutText)
        let jobs = try await h.waitForQueue(timeout: 40) { $0.first { $0.id == 2 }?.state == .failed }
        XCTAssertEqual(jobs.first { $0.id == 2 }?.lastCause, "blockedByPolicy", "the queued job met today's policy")
        XCTAssertEqual(jobs.count, 2, "the refused resend made no job")
        XCTAssertEqual(h.simulator.outgoingCalls.map(\.calledNumber), ["0301234567"], "only the fax sent before the block was dialled")
    }
}
