import CapiProtocol
import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// A fax call placed by the simulator, answered through the real libcapi20 by `faxgate serve`, mailed over
/// TLS to the real Postfix, delivered to the real Dovecot, and fetched back over IMAPS.
final class FaxReceptionEndToEndTests: XCTestCase {
    /// Source document: a 3-page PDF made by Ghostscript, then faxed as SFF by Ghostscript's cfax device.
    static func sourceDocument(in dir: TemporaryDirectory, fine: Bool) throws -> (pdf: String, sff: [UInt8]) {
        try faxTestPostScript.write(toFile: dir.path + "/source.ps", atomically: true, encoding: .utf8)
        let pdf = dir.path + "/source.pdf"
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
                           "-sOutputFile=\(pdf)", dir.path + "/source.ps"])
        let sff = dir.path + "/source.sff"
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=cfax", fine ? "-r204x196" : "-r204x98",
                           "-sPAPERSIZE=a4", "-sOutputFile=\(sff)", pdf])
        return (pdf, [UInt8](try Data(contentsOf: URL(fileURLWithPath: sff))))
    }

    func testFaxCall_arrivesAsPDFInTheExtensionsMailbox_overSTARTTLS() async throws {
        let h = try GatewayHarness(.init(smtpSecurity: "starttls", formats: ["pdf", "tiff"]))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try Self.sourceDocument(in: work, fine: true)
        try await h.startGateway()

        let started = Date()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(
            from: "+49301112223", to: "100", document: source.sff, rate: 14400, fine: true, remoteStationID: "+49 30 1112223"))
        XCTAssertTrue(result.accepted, "call not accepted: \(result)")
        XCTAssertEqual(result.bytesSent, source.sff.count)

        // What the gateway said on the line: ALERT first, then CONNECT_RESP with B protocols 4/4/4,
        // SFF format, fine resolution and the extension's station id.
        let fromGateway = h.simulator.messagesFromGateway
        let alertIndex = fromGateway.firstIndex { $0.command == .alert && $0.subcommand == .req }
        let connectResp = fromGateway.first { $0.command == .connect && $0.subcommand == .resp }
        XCTAssertNotNil(alertIndex, "no ALERT_REQ")
        XCTAssertNotNil(connectResp)
        XCTAssertEqual(result.bProtocol?.b1, 4); XCTAssertEqual(result.bProtocol?.b2, 4); XCTAssertEqual(result.bProtocol?.b3, 4)
        let b3 = try XCTUnwrap(result.bProtocol?.faxConfiguration)
        XCTAssertEqual(b3.stationID, "+49 30 9999100")
        XCTAssertTrue(b3.fine)

        let mails = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)
        XCTAssertEqual(mails.count, 1)
        let mail = try ParsedMail(mails[0], in: work)

        // Headers: localized, RFC 2047-encoded subject, a real From, automatic-mail markers.
        XCTAssertEqual(mail.headers["Subject"], "Fax von +49301112223 an Empfang (3 Seiten)")
        XCTAssertTrue(mail.rawHeaders.contains("Subject: Fax von"), "subject is plain ASCII here")
        XCTAssertEqual(mail.headers["From"], "Faxgate Test <\(h.mail.user)>")
        XCTAssertEqual(mail.headers["Auto-Submitted"], "auto-generated")
        XCTAssertEqual(mail.headers["Message-Context"], "fax-message")
        XCTAssertTrue(mail.headers["Message-ID"]?.hasSuffix("@faxgate.e2e.test>") == true, "\(mail.headers)")
        XCTAssertNotNil(mail.headers["Date"])
        // Metadata in the body.
        for expected in ["+49301112223", "+49 30 1112223", "100 (Empfang)",  "fein (204 × 196 dpi)",
                         "14400 bit/s", "Dauer:", "Empfangen:", "vollständig empfangen"] {
            XCTAssertTrue(mail.body.contains(expected), "body lacks '\(expected)':\n\(mail.body)")
        }
        XCTAssertEqual(bodyValue(mail.body, "Seiten"), "3")
        XCTAssertEqual(bodyValue(mail.body, "Übertragungsrate"), "14400 bit/s")
        let duration = Date().timeIntervalSince(started)
        XCTAssertTrue(duration < 60)

        // The PDF: 3 pages, and each rasterized by pdftoppm matches Ghostscript's rendering of the source.
        let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
        XCTAssertTrue(pdf.filename.hasPrefix("fax-") && pdf.filename.hasSuffix("-+49301112223.pdf"), pdf.filename)
        XCTAssertEqual(try pdfPageCount(pdf.path), 3)
        let ours = try work.path + "/ours"
        try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: true)
        // The PDF is A4 by default (the 1728-dot line scaled to 595.28 pt): render at the resolution that maps the
        // page back to 1728 dots, so it lines up with Ghostscript's 204 × 196 dpi rendering of the source.
        let scale = 595.27559055 / (1728.0 / 204 * 72)
        try runTool("pdftoppm", ["-mono", "-rx", String(format: "%.4f", 204 / scale), "-ry", String(format: "%.4f", 196 / scale),
                                 pdf.path, ours + "/p"])
        let rendered = try pbmFiles(in: URL(fileURLWithPath: ours))
        let reference = try ghostscriptPBM(faxTestPostScript, resolution: "204x196", in: work)
        XCTAssertEqual(rendered.count, 3)
        XCTAssertEqual(reference.count, 3)
        for (page, (a, b)) in zip(rendered, reference).enumerated() {
            let diff = compareImages(a, b)
            XCTAssertLessThan(diff.fraction, 0.01, "page \(page + 1): \(diff)")
            XCTAssertGreaterThan(b.blackPixels, 1000, "reference page \(page + 1) is blank: the comparison would prove nothing")
        }

        // The TIFF, on request: multi-page G4 at fax resolution, read by libtiff's own tool.
        let tiff = try XCTUnwrap(mail.attachments.first { $0.filename.hasSuffix(".tif") })
        XCTAssertEqual(tiff.contentType, "image/tiff")
        let tiffInfo = try runTool("tiffinfo", [tiff.path]).stdoutText
        XCTAssertEqual(tiffInfo.components(separatedBy: "TIFF Directory").count - 1, 3)
        XCTAssertTrue(tiffInfo.contains("CCITT Group 4"), tiffInfo)
        XCTAssertTrue(tiffInfo.contains("Resolution: 204, 196"), tiffInfo)

        // Journal: one complete, mailed call with the session facts.
        let calls = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(calls.count, 1)
        let call = calls[0]
        XCTAssertEqual(call.outcome, .complete)
        XCTAssertEqual(call.pages, 3)
        XCTAssertEqual(call.bitRate, 14400)
        XCTAssertEqual(call.remoteStationID, "+49 30 1112223")
        XCTAssertEqual(call.calledNumber, "100")
        XCTAssertEqual(call.extensionName, "Empfang")
        // Redacted log: the caller's number never appears at info level.
        let log = h.gatewayLog()
        let infoLines = log.split(separator: "\n").filter { $0.contains(" info ") || $0.contains(" notice ") }
        XCTAssertFalse(infoLines.isEmpty)
        XCTAssertFalse(infoLines.contains { $0.contains("1112223") }, "unredacted number in: \(infoLines)")
        XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
    }

    func testNormalResolutionFax_overImplicitTLS_keepsA4Aspect_andHonoursCLIR() async throws {
        let h = try GatewayHarness(.init(smtpSecurity: "tls", language: "en"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try Self.sourceDocument(in: work, fine: false)
        try await h.startGateway()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(
            from: "+49301112223", to: "125", document: source.sff, callingNumberRestricted: true, rate: 9600, fine: false))
        XCTAssertTrue(result.accepted)
        let mail = try ParsedMail(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)[0], in: work)
        XCTAssertEqual(mail.headers["Subject"], "Fax from withheld number to Empfang (3 pages)")
        XCTAssertFalse(mail.body.contains("1112223"), "a withheld number must not be mailed")
        XCTAssertTrue(mail.body.contains("normal (204 × 98 dpi)"), mail.body)
        XCTAssertTrue(mail.body.contains("9600 bit/s"), mail.body)
        let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
        let info = try runTool("pdfinfo", [pdf.path]).stdoutText
        let size = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("Page size:") })
        let numbers = size.split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(numbers.count, 2, String(size))
        // A4 is 595 × 842 pt; a 98-lpi page drawn with square pixels would be half as tall.
        XCTAssertEqual(numbers[0], 610, accuracy: 15)
        XCTAssertEqual(numbers[1], 842, accuracy: 20)
    }

    func testRemoteAbortAfterPage2_mailsTheTwoReadablePagesAndTheReason() async throws {
        let h = try GatewayHarness()
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try Self.sourceDocument(in: work, fine: true)
        try await h.startGateway()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(
            from: "+49301112223", to: "100", document: source.sff, fault: .remoteAbortAfterPage(2)))
        XCTAssertTrue(result.accepted)
        XCTAssertEqual(result.reasonB3, 0x3314)
        let mail = try ParsedMail(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)[0], in: work)
        XCTAssertEqual(mail.headers["Subject"], "Unvollständiges Fax von +49301112223 an Empfang (2 Seiten lesbar)")
        XCTAssertTrue(mail.rawHeaders.contains("=?UTF-8?"), "non-ASCII subject must be RFC 2047 encoded")
        XCTAssertTrue(mail.body.contains("abgebrochen:"), mail.body)
        let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
        XCTAssertEqual(try pdfPageCount(pdf.path), 2)
        let calls = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(calls[0].outcome, .partial)
        XCTAssertEqual(calls[0].reasonB3, 0x3314)
        XCTAssertEqual(calls[0].pages, 2)
    }

    func testGarbageDocument_isKeptInTheSpoolAndReported() async throws {
        let h = try GatewayHarness(.init(language: "en"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try await h.startGateway()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: garbage, pages: 1))
        XCTAssertTrue(result.accepted)
        let mail = try ParsedMail(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)[0], in: work)
        XCTAssertEqual(mail.headers["Subject"], "Failed fax reception from +49301112223 to Empfang")
        XCTAssertTrue(mail.body.contains("unreadable"), mail.body)
        XCTAssertTrue(mail.attachments.isEmpty)
        let calls = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(calls[0].outcome, .failed)
        // The bytes that arrived are kept for inspection, byte for byte.
        let spoolPath = try XCTUnwrap(calls[0].spoolPath)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: spoolPath))), garbage)
    }

    func testGatewayRunningAsAnUnprivilegedUser_receivesAndMails() async throws {
        try runTool("sh", ["-c", "id faxgate >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin faxgate"])
        let h = try GatewayHarness(.init(runAsUser: "faxgate"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try Self.sourceDocument(in: work, fine: true)
        try await h.startGateway()
        let pid = try XCTUnwrap(h.process?.processIdentifier)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let uid = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("Uid:") })
        XCTAssertFalse(uid.split(separator: "\t").dropFirst().contains("0"), "the daemon must not run as root: \(uid)")
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
        XCTAssertTrue(result.accepted)
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30).count, 1)
        XCTAssertFalse(h.gatewayLog().contains("running as root"))
    }

    func testUnknownNumber_isRejectedAndJournaled() async throws {
        let h = try GatewayHarness()
        defer { h.shutdown() }
        try await h.startGateway()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "999", document: [0x53]))
        XCTAssertFalse(result.accepted)
        XCTAssertEqual(result.rejectCode, 0x3481, "unallocated number")
        XCTAssertFalse(result.alerted, "a call we will not take must not ring")
        let calls = try await h.waitForJournal { !$0.isEmpty }
        XCTAssertEqual(calls[0].state, .rejected)
        XCTAssertEqual(calls[0].calledNumber, "999")
        XCTAssertTrue(calls[0].reasonText?.contains("no extension") == true)
    }

    func testUnknownNumber_withCatchAll_reachesTheCatchAllExtension() async throws {
        let h = try GatewayHarness(.init(catchAll: "Labor"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try Self.sourceDocument(in: work, fine: true)
        try await h.startGateway()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "999", document: source.sff))
        XCTAssertTrue(result.accepted)
        let mail = try ParsedMail(try h.mail.fetch(user: h.mail.users[1], expect: 1, timeoutSeconds: 30)[0], in: work)
        XCTAssertEqual(mail.headers["Subject"], "Fax from +49301112223 to Labor (3 pages)")
    }
}

/// Page count as poppler's pdfinfo reads it.
func pdfPageCount(_ path: String) throws -> Int? {
    let info = try runTool("pdfinfo", [path]).stdoutText
    return info.split(separator: "\n").first { $0.hasPrefix("Pages:") }
        .flatMap { Int($0.dropFirst("Pages:".count).trimmingCharacters(in: .whitespaces)) }
}

/// The value after "Label:" in a mail body's fact table.
func bodyValue(_ body: String, _ label: String) -> String? {
    body.split(whereSeparator: \.isNewline).first { $0.hasPrefix(label + ":") }
        .map { $0.dropFirst(label.count + 1).trimmingCharacters(in: .whitespaces) }
}
