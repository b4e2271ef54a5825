import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Crashes, hostile mail, forged senders and the CLI around the mail → fax path.
final class MailToFaxRobustnessTests: XCTestCase {
    /// Puts a raw message straight into the watched mailbox (no MTA to tidy it up), as IMAP APPEND would.
    func deliver(_ h: GatewayHarness, _ raw: String, user: String = "fax@example.test") throws {
        let conf = try XCTUnwrap(h.mail.environment["DOVECOT_CONF"])
        try runTool("doveadm", ["-c", conf, "save", "-u", user, "-m", "INBOX"], stdin: Data(raw.utf8))
    }

    func simple(_ subject: String, to: String = "0301234567@fax.example.test", from: String = "alice@example.test",
                extra: String = "", body: String = "Bitte faxen.") -> String {
        "From: \(from)\r\nTo: \(to)\r\nSubject: \(subject)\r\nMessage-ID: <\(UUID().uuidString)@example.test>\r\n\(extra)MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\(body)\r\n"
    }

    func testGatewayKilledAtSeveralPoints_everyMailBecomesExactlyOneJob() async throws {
        let h = try GatewayHarness(.init(mailToFax: true))
        defer { h.shutdown() }
        let count = 8
        // Far-future send time: the test counts jobs, it does not want a crash mid-call in the picture.
        for n in 0..<count {
            try deliver(h, simple("order \(n)", extra: "X-Fax-Send-At: 2099-01-01T00:00:00Z\r\n"))
        }
        for delay in [0.4, 0.9, 1.3, 1.8, 2.5] {
            try await h.startGateway()
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            h.stopGateway(signal: SIGKILL)
        }
        try await h.startGateway()
        let jobs = try await h.waitForQueue(timeout: 60) { $0.count >= count }
        try await Task.sleep(for: .seconds(3))  // room for a duplicate to appear
        let final = try h.queue()
        XCTAssertEqual(final.count, count, "exactly one job per mail: \(final.map(\.subject))")
        XCTAssertEqual(Set(final.map(\.subject)), Set((0..<count).map { "order \($0)" }))
        XCTAssertTrue(jobs.allSatisfy { $0.state == .ready })
        let processed = try h.mail.fetch(user: h.mail.user, expect: count, mailbox: "Processed", timeoutSeconds: 20)
        XCTAssertEqual(processed.count, count, "every order moved out of the inbox once")
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 0, timeoutSeconds: 1).count, 0, "inbox empty")
    }

    func testMailThatStopsTheGatewayThreeTimesWhileConverting_isRefusedInsteadOfTriedForever() async throws {
        let h = try GatewayHarness(.init(language: "en", mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("poison")
        // Ghostscript loops on this for render_timeout_seconds (10 s): long enough to kill the gateway mid-way.
        let loop = Data("%!PS\n{ 1 pop } loop\n".utf8).base64EncodedString()
        try deliver(h, "From: alice@example.test\r\nTo: 0301234567@fax.example.test\r\nSubject: poison\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/postscript; name=p.ps\r\n"
            + "Content-Transfer-Encoding: base64\r\n\r\n\(loop)\r\n--b--\r\n")
        let intake = h.spool + "/intake"
        for round in 1...3 {
            try await h.startGateway()
            // Converting: the stored mail and its attempt counter are there.
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: intake)) ?? []
                if let marker = names.first(where: { $0.hasSuffix(".attempts") }),
                   String(decoding: FileManager.default.contents(atPath: intake + "/" + marker) ?? Data(), as: UTF8.self) == "\(round)" {
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            h.stopGateway(signal: SIGKILL)  // as if the conversion had crashed the daemon
        }
        try await h.startGateway()
        let reply = try ParsedMail(try XCTUnwrap(h.mail.fetch(user: "alice@example.test", expect: 1, timeoutSeconds: 30).first), in: work)
        XCTAssertEqual(reply.headers["Subject"], "Fax not sent: poison")
        XCTAssertTrue(reply.body.contains("stopped the gateway three times"), reply.body)
        XCTAssertTrue(h.gatewayLog().contains("refusing it"))
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty)
    }

    func testHostileMail_eachIsAnswered_andTheDaemonGoesOn() async throws {
        let h = try GatewayHarness(.init(language: "en", mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("hostile")
        try await h.startGateway()
        let boundary = "b1"
        func multipart(_ subject: String, _ parts: String, header: String = "") -> String {
            "From: alice@example.test\r\nTo: 0301234567@fax.example.test\r\nSubject: \(subject)\r\n\(header)MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n\r\n\(parts)"
        }
        let loopPS = Data("%!PS\n{ 1 pop } loop\n".utf8).base64EncodedString()
        // A PNG that claims 50000 × 50000 pixels: a decompression bomb stopped at the header.
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
        let ihdr: [UInt8] = [0x49, 0x48, 0x44, 0x52, 0, 0, 0xC3, 0x50, 0, 0, 0xC3, 0x50, 8, 2, 0, 0, 0]
        png += ihdr.dropFirst(4) + crc32(ihdr)
        png += [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
        let bomb = Data(png).base64EncodedString()
        let cases: [(String, String)] = [
            ("bad boundary", multipart("bad boundary", "--wrong\r\nContent-Type: application/pdf\r\n\r\n%PDF-garbage\r\n")),
            ("bad base64", multipart("bad base64", "--b1\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!not*base64****\r\n--b1--\r\n")),
            ("nested message", multipart("nested message", "--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: inner\r\n\r\nhello\r\n--b1--\r\n")),
            ("rfc2231 zip", multipart("rfc2231 zip", "--b1\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename*=UTF-8''Befund%20M%C3%BCller.zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBAoAAAAAAA==\r\n--b1--\r\n")),
            ("looping postscript", multipart("looping postscript", "--b1\r\nContent-Type: application/postscript; name=loop.ps\r\nContent-Transfer-Encoding: base64\r\n\r\n\(loopPS)\r\n--b1--\r\n")),
            ("png bomb", multipart("png bomb", "--b1\r\nContent-Type: image/png; name=bomb.png\r\nContent-Transfer-Encoding: base64\r\n\r\n\(bomb)\r\n--b1--\r\n")),
            ("huge header", simple("huge header", extra: "X-Junk: " + String(repeating: "a", count: 300_000) + "\r\n")),
            ("deep nesting", "From: alice@example.test\r\nTo: 0301234567@fax.example.test\r\nSubject: deep nesting\r\nMIME-Version: 1.0\r\n"
                + (0..<40).map { "Content-Type: multipart/mixed; boundary=\"n\($0)\"\r\n\r\n--n\($0)\r\n" }.joined() + "\r\nx\r\n"),
            ("8bit header \u{00FC}", "From: alice@example.test\r\nTo: 0301234567@fax.example.test\r\nSubject: 8bit header \u{00FC}\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n"),
        ]
        for (_, raw) in cases { try deliver(h, raw) }
        // Over the size limit (10 MB here): refused from the headers alone, never parsed.
        let big = simple("too big", body: String(repeating: "0123456789abcdef\r\n", count: 12 * 1024 * 1024 / 18))
        try deliver(h, big)

        let expected = cases.count + 1
        let replies = try h.mail.fetch(user: "alice@example.test", expect: expected, timeoutSeconds: 90).map { try ParsedMail($0, in: work) }
        let subjects = replies.compactMap { $0.headers["Subject"] }
        for (subject, _) in cases + [("too big", "")] {
            XCTAssertTrue(subjects.contains { $0.hasPrefix("Fax not sent") && $0.contains(subject) }, "no reply for '\(subject)': \(subjects)")
        }
        func body(_ s: String) -> String { replies.first { $0.headers["Subject"]?.contains(s) == true }?.body ?? "" }
        XCTAssertTrue(body("looping postscript").contains("gave up after"), body("looping postscript"))
        XCTAssertTrue(body("png bomb").contains("exceeds"), body("png bomb"))
        XCTAssertTrue(body("too big").contains("limit"), body("too big"))
        XCTAssertTrue(body("rfc2231 zip").contains("Befund Müller.zip"), "the part is named as the sender named it: \(body("rfc2231 zip"))")
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty, "nothing hostile was dialled")

        // The daemon is unaffected: the next good order is faxed.
        try deliver(h, simple("good one"))
        let jobs = try await h.waitForQueue(timeout: 60) { $0.contains { $0.subject == "good one" && $0.state == .done } }
        XCTAssertEqual(jobs.filter { $0.state == .done }.count, 1)
        XCTAssertEqual(h.process?.isRunning, true)
    }

    func testForgedSender_withoutTrustedDKIMPass_isRefused_andIDLEPicksUpAnAppendQuickly() async throws {
        let h = try GatewayHarness(.init(mailToFax: true, requireAuthentication: "dkim"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("dkim")
        try await h.startGateway()
        try await Task.sleep(for: .seconds(2))  // the intake is in IDLE now

        let appended = Date()
        // Delivered as our MTA would hand it over: its verdict above the Received header with which it took the mail.
        try deliver(h, simple("signed", extra: "Authentication-Results: mx.example.test; dkim=pass header.d=example.test header.s=s1\r\n"
                                  + "Received: from c.example.org (c.example.org [192.0.2.1]) by mx.example.test (Postfix) with ESMTP id T1; Tue, 1 Dec 2026 10:00:00 +0000\r\n"))
        _ = try await h.waitForQueue(timeout: 20) { $0.contains { $0.subject == "signed" } }
        print("APPEND → job queued with IDLE: \(String(format: "%.3f", Date().timeIntervalSince(appended))) s")

        try deliver(h, simple("forged", extra: "Authentication-Results: evil.example; dkim=pass header.d=example.test\r\n"))
        try deliver(h, simple("unsigned"))
        // Unverified senders are not answered (their From may be forged: no backscatter); the refusals are journaled.
        let intakes = try await h.waitForIntakes { $0.filter { $0.state == .rejected }.count == 2 }
        XCTAssertEqual(intakes.filter { $0.state == .rejected }.map(\.reply), [.suppressed, .suppressed])
        let replies = try h.mail.fetch(user: "alice@example.test", expect: 1, timeoutSeconds: 40).map { try ParsedMail($0, in: work) }
        XCTAssertFalse(replies.contains { $0.headers["Subject"]?.hasPrefix("Fax nicht gesendet") == true }, "\(replies.map { $0.headers["Subject"] ?? "" })")
        let jobs = try h.queue()
        XCTAssertEqual(jobs.map(\.subject), ["signed"], "only the verified sender's order became a job")
    }

    func testCLI_sendQueueCancelResend_goThroughTheDaemon() async throws {
        let h = try GatewayHarness(.init(language: "en", mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("cli")
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        try await h.startGateway()
        let bin = GatewayHarness.faxgateBinary
        let sent = try runTool(bin, ["send", "-c", h.configPath, "--to", "030 1234567", "--notify", "alice@example.test",
                                     "--subject", "CLI test", "--cover", pdf])
        XCTAssertTrue(sent.stdoutText.hasPrefix("queued: job #1 to +49301234567 (3 pages)"), sent.stdoutText)
        _ = try await h.waitForQueue { $0.first { $0.id == 1 }?.state == .done }
        XCTAssertEqual(h.simulator.outgoingCalls.count, 1)
        XCTAssertEqual(try sfftobmpPages(h.simulator.outgoingCalls[0].document, keepResolution: true, in: work, label: "cli").count, 3,
                       "cover page + 2 pages")

        let resent = try runTool(bin, ["resend", "-c", h.configPath, "1"])
        XCTAssertTrue(resent.stdoutText.contains("(resend of #1)"), resent.stdoutText)
        _ = try await h.waitForQueue { $0.first { $0.id == 2 }?.state == .done }

        let later = try runTool(bin, ["send", "-c", h.configPath, "--to", "0307654321", "--at", "2099-01-01T08:00:00Z", pdf])
        XCTAssertTrue(later.stdoutText.contains("job #3"), later.stdoutText)
        let canceled = try runTool(bin, ["cancel", "-c", h.configPath, "3"])
        XCTAssertEqual(canceled.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "job #3 canceled")
        let refused = try runTool(bin, ["send", "-c", h.configPath, "--to", "0900 123456", pdf], check: false)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stdoutText.contains("blocked"), refused.stdoutText)

        let queue = try runTool(bin, ["queue", "-c", h.configPath]).stdoutText
        XCTAssertTrue(queue.contains("canceled"), queue)
        XCTAssertEqual(try h.queue().map(\.state), [.canceled, .done, .done])
        XCTAssertEqual(h.simulator.outgoingCalls.count, 2, "the canceled job never dialled")
        let reports = try h.mail.fetch(user: "alice@example.test", expect: 2, timeoutSeconds: 30)
        XCTAssertGreaterThanOrEqual(reports.count, 2)
    }
}

/// CRC-32 (PNG chunks), to craft a well-formed header that lies about the image size.
func crc32(_ bytes: [UInt8]) -> [UInt8] {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    crc ^= 0xFFFF_FFFF
    return [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
}
