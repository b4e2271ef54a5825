import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// What of a mail is faxed, and in which language the gateway answers — through the real Postfix, Dovecot
/// (IMAPS), libcapi20 and Ghostscript.
final class MailContentEndToEndTests: XCTestCase {
    static let englishWords: Set<String> = ["the", "is", "not", "could", "was", "and", "of", "no", "be", "for", "with", "has",
                                            "cannot", "your", "message", "attachment", "number", "page", "pages", "sent", "reason",
                                            "supported", "header", "send", "without", "it"]

    static func englishWordsIn(_ text: String) -> Set<String> {
        Set(text.lowercased().components(separatedBy: CharacterSet.letters.inverted).filter { !$0.isEmpty }).intersection(englishWords)
    }

    func makeMail(_ h: GatewayHarness, to: [String], subject: String, body: String,
                  attachments: [(path: String, type: String, name: String)]) throws -> [UInt8] {
        let spec: [String: Any] = ["from": "Alice <alice@example.test>", "to": to, "subject": subject, "headers": [String: String](),
                                   "body": body, "attachments": attachments.map { ["path": $0.path, "type": $0.type, "filename": $0.name] }]
        let specPath = h.dir.path + "/spec-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, specPath, specPath + ".eml"])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: specPath + ".eml")))
    }

    /// A reply to an earlier thread: one line for us, the PDF, and the quoted earlier message naming another
    /// patient. The fax must be the PDF's two pages and nothing else; the status mail is German throughout.
    func testReplyWithPDF_faxesOnlyThePDF_notTheNoteOrTheQuotedThread() async throws {
        let h = try GatewayHarness(.init(mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("m2f-content")
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        h.simulator.setOutgoingBehaviour(for: "0301234567", [.answer(remoteStationID: "+49 30 1234567", rate: 14400, fine: nil, pagesConfirmed: nil)])
        try await h.startGateway()

        let body = """
            Bitte faxen.

            Am 30.11.2026 um 09:12 schrieb Dr. Berg <berg@example.test>:
            > Sehr geehrte Frau Kollegin,
            > anbei der Befund von Frau Erika Mustermann, geb. 01.01.1970.
            > Diagnose: vertraulich

            -- 
            Dr. Alice Example
            """
        let mail = try makeMail(h, to: ["0301234567@fax.example.test"], subject: "AW: Befund Meier",
                                                         body: body, attachments: [(pdf, "application/pdf", "Befund-Meier.pdf")])
        try h.submit(mail)
        let jobs = try await h.waitForQueue(timeout: 60) { $0.first?.state.isFinal == true }
        let job = jobs[0]
        XCTAssertEqual(job.state, .done, "\(job)\n\(h.gatewayLog())")
        XCTAssertEqual(job.pages, 2, "the PDF's two pages; the note and the quoted thread cost no page")
        XCTAssertEqual(job.documentPage, 0)

        // What went over the line: exactly the PDF's pages, each matching Ghostscript's own rendering of the PDF —
        // no text page was made, so no line of the quoted thread can be on the fax.
        let call = try XCTUnwrap(h.simulator.outgoingCalls.first)
        let sent = try sfftobmpPages(call.document, keepResolution: true, in: work, label: "sent")
        XCTAssertEqual(sent.count, 2)
        let gsOut = work.url.appendingPathComponent("gs")
        try FileManager.default.createDirectory(at: gsOut, withIntermediateDirectories: true)
        try runTool("gs", ["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw", "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA",
                           "-dFitPage", "-sOutputFile=\(gsOut.path)/p-%03d.pbm", pdf])
        let reference = try pbmFiles(in: gsOut)
        XCTAssertEqual(reference.count, sent.count)
        for (i, ref) in reference.enumerated() {
            let diff = compareImages(MailToFaxEndToEndTests.crop(sent[i], x0: (1728 - ref.width) / 2, width: ref.width), ref)
            XCTAssertLessThan(diff.fraction, 0.01, "faxed page \(i + 1) is PDF page \(i + 1): \(diff)")
        }
        // The job's SFF on disk holds the same two pages.
        let stored = try SFFReader.read([UInt8](Data(contentsOf: URL(fileURLWithPath: job.sffPath))))
        XCTAssertEqual(stored.pages.count, 2)

        // The status mail (German extension): German throughout, with the send report attached.
        let reports = try h.mail.fetch(user: "alice@example.test", expect: 1, timeoutSeconds: 30)
        let report = try ParsedMail(reports[0], in: work)
        XCTAssertEqual(report.headers["Subject"], "Fax an +49301234567 gesendet (2 Seiten)")
        let found = Self.englishWordsIn(report.body.replacingOccurrences(of: "Befund Meier", with: ""))
        XCTAssertTrue(found.isEmpty, "English words \(found) in the German status mail:\n\(report.body)")
        let attachment = try XCTUnwrap(report.attachments.first { $0.contentType == "application/pdf" })
        let text = try runTool("pdftotext", [attachment.path, "-"]).stdoutText
        XCTAssertTrue(text.contains("Seite 1 (verkleinert)"), text)
    }

    /// A German refusal, read as a mail program reads it (Python's email package): no English sentence of ours,
    /// and the sender's Subject quoted short and without bidi controls or line breaks.
    func testGermanRefusal_hasNoEnglishSentence_andQuotesTheSubjectShortAndClean() async throws {
        let h = try GatewayHarness(.init(mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("m2f-content")
        let docx = work.path + "/brief.docx"
        try Data("PK\u{03}\u{04}not really a word file".utf8).write(to: URL(fileURLWithPath: docx))
        try await h.startGateway()

        let subject = "Befund \u{202E}gnagnI\u{202C} " + String(repeating: "Erika Mustermann ", count: 12)
        try h.submit(try makeMail(
            h, to: ["0301234567@fax.example.test"], subject: subject, body: "Bitte faxen.",
            attachments: [(docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "brief.docx")]))
        let replies = try h.mail.fetch(user: "alice@example.test", expect: 1, timeoutSeconds: 60).map { try ParsedMail($0, in: work) }
        let reply = try XCTUnwrap(replies.first)
        let replySubject = try XCTUnwrap(reply.headers["Subject"])
        XCTAssertTrue(replySubject.hasPrefix("Fax nicht gesendet: Befund "), replySubject)
        XCTAssertLessThanOrEqual(replySubject.count, "Fax nicht gesendet: ".count + 80, replySubject)
        XCTAssertNil(replySubject.rangeOfCharacter(from: CharacterSet(charactersIn: "\u{202E}\u{202C}\r\n")))
        XCTAssertTrue(reply.body.contains("Grund: Die Anlage „brief.docx“"), reply.body)
        XCTAssertTrue(reply.body.contains("kann nicht gefaxt werden"), reply.body)
        XCTAssertTrue(reply.body.contains("X-Fax-Skip-Unsupported: yes"), "the hint, in German:\n\(reply.body)")
        let ours = reply.body.replacingOccurrences(of: "X-Fax-Skip-Unsupported: yes", with: "")
            .replacingOccurrences(of: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", with: "")
        let found = Self.englishWordsIn(ours)
        XCTAssertTrue(found.isEmpty, "English words \(found) in the German refusal:\n\(reply.body)")
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty, "nothing dialled")
    }
}
