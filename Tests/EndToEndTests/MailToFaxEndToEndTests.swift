import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// A mail submitted to the real Postfix, delivered to the real Dovecot mailbox the gateway watches (IMAPS,
/// IDLE), faxed through the real libcapi20 to the simulator — or refused with a reply that says why.
final class MailToFaxEndToEndTests: XCTestCase {
    // MARK: Helpers

    func makeMail(_ h: GatewayHarness, from: String = "Alice <alice@example.test>", to: [String], subject: String,
                  body: String? = nil, html: String? = nil, headers: [String: String] = [:],
                  attachments: [(path: String, type: String, name: String)] = [], messageID: String? = nil) throws -> [UInt8] {
        var spec: [String: Any] = ["from": from, "to": to, "subject": subject, "headers": headers,
                                   "attachments": attachments.map { ["path": $0.path, "type": $0.type, "filename": $0.name] }]
        if let body { spec["body"] = body }
        if let html { spec["html"] = html }
        if let messageID { spec["message_id"] = messageID }
        let specPath = h.dir.path + "/spec-\(UUID().uuidString.prefix(6)).json"
        let out = specPath + ".eml"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, specPath, out])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    /// Two A4 pages with text and boxes, as a PDF made by Ghostscript.
    static func twoPagePDF(in dir: TemporaryDirectory) throws -> String {
        let ps = """
        %!PS
        /Helvetica findfont 28 scalefont setfont 72 720 moveto (Seite eins: Befund) show
        6 setlinewidth 72 600 moveto 520 600 lineto stroke 100 200 200 200 rectfill
        showpage
        /Times-Roman findfont 20 scalefont setfont 72 720 moveto (Seite zwei: Laborwerte 4711) show
        300 300 150 0 360 arc fill
        showpage
        """
        try ps.write(toFile: dir.path + "/two.ps", atomically: true, encoding: .utf8)
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
                           "-sOutputFile=\(dir.path)/two.pdf", dir.path + "/two.ps"])
        return dir.path + "/two.pdf"
    }

    /// A photo-like JPEG (portrait) with a black square in its top-left quarter.
    static func jpeg(in dir: TemporaryDirectory) throws -> String {
        let ps = "%!PS\n<< /PageSize [400 560] >> setpagedevice 0.85 setgray 0 0 400 560 rectfill 0 setgray 20 400 120 120 rectfill showpage\n"
        try ps.write(toFile: dir.path + "/photo.ps", atomically: true, encoding: .utf8)
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=jpeg", "-r72", "-sOutputFile=\(dir.path)/photo.jpg",
                           dir.path + "/photo.ps"])
        return dir.path + "/photo.jpg"
    }

    static func crop(_ image: BilevelImage, x0: Int, width: Int) -> BilevelImage {
        let rowBytes = (width + 7) / 8
        var bits = [UInt8](repeating: 0, count: rowBytes * image.height)
        for y in 0..<image.height { for x in 0..<width where image.isBlack(x0 + x, y) { bits[y * rowBytes + (x >> 3)] |= 0x80 >> UInt8(x & 7) } }
        return BilevelImage(width: width, height: image.height, bitmap: bits)
    }

    static func blackFraction(_ image: BilevelImage, x: ClosedRange<Double>, y: ClosedRange<Double>) -> Double {
        let x0 = Int(x.lowerBound * Double(image.width)), x1 = Int(x.upperBound * Double(image.width))
        let y0 = Int(y.lowerBound * Double(image.height)), y1 = Int(y.upperBound * Double(image.height))
        var black = 0, total = 0
        for yy in y0..<min(y1, image.height) { for xx in x0..<min(x1, image.width) { total += 1; if image.isBlack(xx, yy) { black += 1 } } }
        return total == 0 ? 0 : Double(black) / Double(total)
    }

    // MARK: The whole path

    func testMailWithPDFJPEGAndText_isFaxed_andTheSenderGetsTheSendReport() async throws {
        let h = try GatewayHarness(.init(mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("m2f")
        let pdf = try Self.twoPagePDF(in: work)
        let jpg = try Self.jpeg(in: work)
        h.simulator.setOutgoingBehaviour(for: "0301234567", [.answer(remoteStationID: "+49 30 1234567", rate: 14400, fine: nil, pagesConfirmed: nil)])
        try await h.startGateway()
        // Let the intake reach IDLE before the mail arrives, so the figure below is the IDLE path.
        try await Task.sleep(for: .seconds(2))

        // X-Fax-Body: the text beside attachments is faxed only on request (issue 8, point 18).
        let mail = try makeMail(h, to: ["0301234567@fax.example.test"], subject: "Befund Müller",
                                body: "Bitte um Rückruf.\nMit freundlichen Grüßen\n", headers: ["X-Fax-Body": "yes"], attachments: [
                                    (pdf, "application/pdf", "Befund.pdf"), (jpg, "image/jpeg", "Foto.jpg"),
                                ])
        let submitted = Date()
        try h.submit(mail)
        let queued = try await h.waitForQueue(timeout: 30) { !$0.isEmpty }
        let latency = Date().timeIntervalSince(submitted)
        print("SMTP submit → job queued (Postfix → LMTP → Dovecot → IDLE → render → queue): \(String(format: "%.2f", latency)) s")
        XCTAssertEqual(queued.count, 1)

        let jobs = try await h.waitForQueue { $0.first?.state.isFinal == true }
        let job = jobs[0]
        XCTAssertEqual(job.state, .done, "\(job)\n\(h.gatewayLog())")
        XCTAssertEqual(job.number, "+49301234567")
        XCTAssertEqual(job.dialString, "0301234567")
        XCTAssertEqual(job.pages, 4, "text page + 2 PDF pages + the photo")
        XCTAssertEqual(job.documentPage, 1, "the report's thumbnail shows the PDF, not the text page")
        XCTAssertEqual(job.pagesSent, 4)
        XCTAssertEqual(job.remoteStationID, "+49 30 1234567")

        // What went over the line, decoded by sfftobmp, against Ghostscript's own rendering of the PDF.
        let call = try XCTUnwrap(h.simulator.outgoingCalls.first)
        XCTAssertEqual(call.calledNumber, "0301234567")
        XCTAssertEqual(call.cip, 17)
        XCTAssertEqual(call.faxConfiguration?.stationID, "+49 30 9999100")
        XCTAssertTrue(call.violations.isEmpty, "\(call.violations)")
        let pages = try sfftobmpPages(call.document, keepResolution: true, in: work, label: "sent")
        XCTAssertEqual(pages.count, 4)
        XCTAssertTrue(pages.allSatisfy { $0.width == 1728 })
        XCTAssertGreaterThan(Self.blackFraction(pages[0], x: 0.05...0.6, y: 0.0...0.15), 0.001, "the text body is on page 1")
        let gsOut = work.url.appendingPathComponent("gs")
        try FileManager.default.createDirectory(at: gsOut, withIntermediateDirectories: true)
        try runTool("gs", ["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw", "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA",
                           "-dFitPage", "-sOutputFile=\(gsOut.path)/p-%03d.pbm", pdf])
        let reference = try pbmFiles(in: gsOut)
        XCTAssertEqual(reference.count, 2)
        for (i, ref) in reference.enumerated() {
            let diff = compareImages(Self.crop(pages[i + 1], x0: (1728 - ref.width) / 2, width: ref.width), ref)
            print("PDF page \(i + 1) as faxed vs Ghostscript: \(diff)")
            XCTAssertLessThan(diff.fraction, 0.01, "page \(i + 2): \(diff)")
            XCTAssertGreaterThan(ref.blackPixels, 1000)
        }
        XCTAssertGreaterThan(Self.blackFraction(pages[3], x: 0.0...0.5, y: 0.0...0.5), 0.02, "the photo's black square stays top-left")
        XCTAssertLessThan(Self.blackFraction(pages[3], x: 0.5...1.0, y: 0.5...1.0), Self.blackFraction(pages[3], x: 0.0...0.5, y: 0.0...0.5))

        // The sender's status mail with the send report and its page-1 thumbnail.
        let reports = try h.mail.fetch(user: "alice@example.test", expect: 1, timeoutSeconds: 30)
        let report = try ParsedMail(reports[0], in: work)
        XCTAssertEqual(report.headers["Subject"], "Fax an +49301234567 gesendet (4 Seiten)")
        XCTAssertEqual(report.headers["Auto-Submitted"], "auto-replied")
        XCTAssertTrue(report.rawHeaders.contains("Return-Path: <>"), "status mail goes out with an empty envelope sender")
        let attachment = try XCTUnwrap(report.attachments.first { $0.contentType == "application/pdf" })
        let text = try runTool("pdftotext", [attachment.path, "-"]).stdoutText
        for expected in ["+49301234567", "+49 30 1234567", "4", "Seite 2 (verkleinert)"] {
            XCTAssertTrue(text.contains(expected), "report lacks \(expected):\n\(text)")
        }
        try runTool("pdftoppm", ["-r", "50", "-gray", "-f", "1", "-l", "1", attachment.path, work.path + "/report"])
        XCTAssertNotNil(try FileManager.default.contentsOfDirectory(atPath: work.path).first { $0.hasPrefix("report") })

        // The order left the inbox for Processed; the journal of intake says accepted.
        XCTAssertEqual(h.simulator.outgoingCalls.count, 1, "faxed exactly once")
    }

    func testBusyTwice_thenSuccess_andRemoteAbortAfterPage2_endWithTheRightReports() async throws {
        let h = try GatewayHarness(.init(language: "en", mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("m2f")
        let pdf = try Self.twoPagePDF(in: work)
        let answer = OutgoingBehaviour.answer(remoteStationID: "+49 30 7", rate: 9600, fine: nil, pagesConfirmed: nil)
        h.simulator.setOutgoingBehaviour(for: "0301111111", [.busy, .busy, answer])
        h.simulator.setOutgoingBehaviour(for: "0302222222", [.abortAfterPage(2)])
        try await h.startGateway()
        for number in ["0301111111", "0302222222"] {
            try h.submit(try makeMail(h, to: ["\(number)@fax.example.test"], subject: "Retry \(number)", body: "Seite eins",
                                      headers: ["X-Fax-Body": "yes"], attachments: [(pdf, "application/pdf", "a.pdf")]))
        }
        let jobs = try await h.waitForQueue(timeout: 60) { $0.count == 2 && $0.allSatisfy { $0.state.isFinal } }
        let busy = try XCTUnwrap(jobs.first { $0.dialString == "0301111111" })
        XCTAssertEqual(busy.state, .done)
        XCTAssertEqual(busy.tries, 3)
        XCTAssertEqual(busy.pagesSent, 3)
        let aborted = try XCTUnwrap(jobs.first { $0.dialString == "0302222222" })
        XCTAssertEqual(aborted.state, .failed)
        XCTAssertEqual(aborted.tries, 2, "max_protocol_errors: 2")
        XCTAssertEqual(aborted.pagesSent, 2)
        XCTAssertEqual(aborted.lastCause, "faxProtocolError")
        XCTAssertEqual(h.simulator.outgoingCalls.filter { $0.calledNumber == "0301111111" }.count, 3)

        let reports = try h.mail.fetch(user: "alice@example.test", expect: 2, timeoutSeconds: 30).map { try ParsedMail($0, in: work) }
        let subjects = Set(reports.compactMap { $0.headers["Subject"] })
        XCTAssertTrue(subjects.contains("Fax an +49301111111 gesendet (3 Seiten)") || subjects.contains("Fax to +49301111111 sent (3 pages)"), "\(subjects)")
        let failure = try XCTUnwrap(reports.first { $0.headers["Subject"]?.contains("0302222222") == true || $0.headers["Subject"]?.contains("49302222222") == true })
        XCTAssertTrue(failure.body.contains("2 / 3"), failure.body)
        XCTAssertFalse(failure.attachments.isEmpty, "a failure report carries the send report too")
    }

    // MARK: Refusals: every one answered, none dialled

    func testRefusals_eachGetsAReplySayingWhy_andNothingIsDialled() async throws {
        let h = try GatewayHarness(.init(mailToFax: true, allowedSenders: ["alice@example.test", "bob@example.test"],
                                         requireAuthentication: "none", maxPagesPerDay: 6))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("m2f")
        let pdf = try Self.twoPagePDF(in: work)
        let encrypted = work.path + "/locked.pdf"
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sOwnerPassword=owner", "-sUserPassword=user",
                           "-sOutputFile=\(encrypted)", pdf])
        let docx = work.path + "/brief.docx"
        try Data("PK\u{03}\u{04}not really a word file".utf8).write(to: URL(fileURLWithPath: docx))
        try await h.startGateway()

        // Each case: (sender, recipient, what the reply must say).
        try h.submit(try makeMail(h, from: "mallory@example.test", to: ["0301234567@fax.example.test"], subject: "unknown sender", body: "x"))
        try h.submit(try makeMail(h, to: ["09001234567@fax.example.test"], subject: "premium", body: "x"))
        try h.submit(try makeMail(h, to: ["0301234567@fax.example.test"], subject: "encrypted",
                                  attachments: [(encrypted, "application/pdf", "locked.pdf")]))
        try h.submit(try makeMail(h, to: ["0301234567@fax.example.test"], subject: "docx",
                                  attachments: [(docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "brief.docx")]))
        try h.submit(try makeMail(h, to: ["0301234567@fax.example.test"], subject: "empty", body: "\n\n-- \nAlice\n"))
        try h.submit(try makeMail(h, to: ["0041441234567@fax.example.test"], subject: "abroad", body: "x"))
        try h.submit(try makeMail(h, to: ["fax@example.test"], subject: "no number here", body: "x"))

        let replies = try h.mail.fetch(user: "alice@example.test", expect: 6, timeoutSeconds: 60).map { try ParsedMail($0, in: work) }
        func reply(_ subject: String) -> ParsedMail? { replies.first { $0.headers["Subject"]?.hasSuffix(subject) == true } }
        let expectations: [(String, String)] = [
            // German extension: the reasons are German (issue 8, point 16).
            ("premium", "einer gesperrten Vorwahl (Mehrwert- oder Sonderdienst)"),
            ("encrypted", "mit einem Passwort geschützt"),
            ("docx", "kann nicht gefaxt werden"),
            ("empty", "es gibt nichts zu faxen"),
            ("abroad", "Faxe ins Ausland sind für Sie nicht freigegeben"),
            ("no number here", "beginnt nicht mit einer Faxnummer"),
        ]
        for (subject, reason) in expectations {
            let r = try XCTUnwrap(reply(subject), "no reply for '\(subject)'; got \(replies.map { $0.headers["Subject"] ?? "" })")
            XCTAssertTrue(r.headers["Subject"]!.hasPrefix("Fax nicht gesendet: "), r.headers["Subject"]!)
            XCTAssertTrue(r.body.contains(reason), "reply for \(subject) lacks '\(reason)':\n\(r.body)")
            XCTAssertEqual(r.headers["Auto-Submitted"], "auto-replied")
        }
        // The unknown sender is told too (mallory is a real mailbox here), and why.
        let mallory = try h.mail.fetch(user: "bob@example.test", expect: 0, timeoutSeconds: 1)
        XCTAssertTrue(mallory.isEmpty)

        // Over the daily page limit: 6 pages allowed; a 3-page fax twice passes, the third is refused.
        for n in 0..<3 {
            try h.submit(try makeMail(h, from: "Bob <bob@example.test>", to: ["030555000\(n)@fax.example.test"], subject: "limit \(n)",
                                      body: "x", headers: ["X-Fax-Body": "yes"], attachments: [(pdf, "application/pdf", "a.pdf")]))
            try await Task.sleep(for: .milliseconds(1500))
        }
        let bobReplies = try h.mail.fetch(user: "bob@example.test", expect: 3, timeoutSeconds: 60).map { try ParsedMail($0, in: work) }
        let limit = try XCTUnwrap(bobReplies.first { $0.headers["Subject"]?.hasPrefix("Fax nicht gesendet: limit") == true }, "\(bobReplies.map { $0.headers["Subject"] ?? "" })")
        XCTAssertTrue(limit.body.contains("das heutige Limit von 6 überschreiten"), limit.body)

        // Nothing refused was dialled: only bob's two accepted faxes went out.
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(Set(h.simulator.outgoingCalls.map(\.calledNumber)), ["0305550000", "0305550001"])
        XCTAssertTrue(h.gatewayLog().contains("mail refused"))
    }
}
