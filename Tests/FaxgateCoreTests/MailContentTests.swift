import FaxDocument
import FaxgateCore
import FaxRender
import Foundation
import Logging
import MailOut
import SQLiteStorage
import TestSupport
import XCTest

/// What of a mail is faxed: the sender's own words only (no quoted thread, no signature), the body only when
/// there is no document or someone asks for it, a short body on the cover page. Real Ghostscript, real SQLite.
final class MailContentTests: XCTestCase {
    // MARK: The sender's own words

    func testQuotedReplies_attributions_outlookBlocks_andSignature_areNotTheSendersText() {
        let cases: [(String, String)] = [
            ("Bitte faxen.\n\n> Befund Erika Mustermann\n> geb. 01.01.1970\n", "Bitte faxen."),
            ("Bitte faxen.\n\nOn Mon, 30 Nov 2026 at 09:12, Dr. Berg <berg@example.test>\nwrote:\n\nBefund Erika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\n\nOn Mon, 30 Nov 2026, Dr. Berg <berg@example.test> wrote:\nBefund Erika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\nAm 30.11.2026 um 09:12 schrieb Dr. Berg <berg@example.test>:\nBefund Erika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\n\n-----Original Message-----\nFrom: Dr. Berg\nBefund Erika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\n\n-----Ursprüngliche Nachricht-----\nVon: Dr. Berg\nBefund Erika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\n\nVon: Dr. Berg <berg@example.test>\nGesendet: Montag, 30. November 2026 09:12\nAn: Praxis\nBetreff: Befund\n\nErika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\n\n*From:* Dr. Berg\n*Sent:* Monday\n\nErika Mustermann\n", "Bitte faxen."),
            ("Bitte faxen.\n-- \nDr. Alice Example\nPraxis am Park\n", "Bitte faxen."),
            ("Oben.\n> zitiert Erika Mustermann\nUnten.\n", "Oben.\nUnten."),
            ("Von: hier nach dort, ohne Kopfblock\nZweite Zeile\n", "Von: hier nach dort, ohne Kopfblock\nZweite Zeile"),
        ]
        for (body, own) in cases {
            XCTAssertEqual(MailBodyText.own(body), own, "body: \(body.debugDescription)")
            XCTAssertFalse(MailBodyText.own(body).contains("Mustermann"))
        }
        let mail = IncomingMail(fromAddress: "a@example.test", to: [], subject: "s", textBody: "> nur Zitat\n-- \nSig\n")
        XCTAssertNil(mail.meaningfulText, "a body of quotes and signature has no text of the sender's own")
    }

    func testHTMLQuotes_blockquote_gmailQuote_outlookReplyBlock_areDropped() {
        let htmls = [
            "<p>Bitte faxen.</p><blockquote type=\"cite\"><p>Befund Erika Mustermann</p><blockquote>tiefer</blockquote></blockquote><p>Danke</p>",
            "<div dir=\"ltr\">Bitte faxen.</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">Am Mo. schrieb Dr. Berg:</div><blockquote class=\"gmail_quote\">Erika Mustermann</blockquote></div>",
            "<div>Bitte faxen.</div><hr style=\"display:inline-block\"><div id=\"divRplyFwdMsg\" dir=\"ltr\"><b>Von:</b> Dr. Berg<br><b>Gesendet:</b> Montag</div><div>Erika Mustermann</div>",
            "<p>Bitte faxen.</p><div class=\"moz-cite-prefix\">Am 30.11.2026 um 09:12 schrieb Dr. Berg:</div><blockquote>Erika Mustermann</blockquote>",
            "<p>Bitte faxen.</p><div style=\"border-top:solid\"><p><b>Von:</b> Dr. Berg<br><b>Gesendet:</b> Montag<br><b>An:</b> Praxis</p></div><p>Erika Mustermann</p>",
        ]
        for html in htmls {
            let mail = IncomingMail(fromAddress: "a@example.test", to: [], subject: "s", htmlBody: html)
            let own = try? XCTUnwrap(mail.ownBodyText)
            XCTAssertTrue(own?.hasPrefix("Bitte faxen.") == true, "\(own ?? "nil") from \(html)")
            XCTAssertFalse(own?.contains("Mustermann") ?? true, "\(own ?? "nil") from \(html)")
        }
    }

    // MARK: Through the processor

    static func pdf(pages: Int, in dir: TemporaryDirectory) throws -> [UInt8] {
        var ps = "%!PS\n"
        for n in 1...pages {
            ps += "/Helvetica findfont 30 scalefont setfont 72 700 moveto (Dokument Seite \(n)) show 100 200 \(100 * n) 150 rectfill showpage\n"
        }
        try ps.write(toFile: dir.path + "/doc.ps", atomically: true, encoding: .utf8)
        try runTool(faxTool("gs"), ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
                                    "-sOutputFile=\(dir.path)/doc.pdf", dir.path + "/doc.ps"])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.path + "/doc.pdf")))
    }

    static let reply = """
        Bitte faxen.

        Am 30.11.2026 um 09:12 schrieb Dr. Berg <berg@example.test>:
        > Befund Erika Mustermann, geb. 01.01.1970
        > Diagnose: vertraulich
        -- 
        Alice
        """

    func faxed(_ parts: SubmissionParts) async throws -> (job: FaxJob, pages: [FaxPage]) {
        let jobs = try await parts.storage.jobs(in: [.ready])
        XCTAssertEqual(jobs.count, 1)
        let job = try XCTUnwrap(jobs.first)
        let pages = try SFFReader.read([UInt8](Data(contentsOf: URL(fileURLWithPath: job.sffPath)))).pages
        XCTAssertEqual(pages.count, job.pages)
        return (job, pages)
    }

    func testReplyWithPDF_faxesExactlyThePDFsPages_noTextPage() async throws {
        var parts = try await SubmissionParts.make()
        let pdf = try Self.pdf(pages: 2, in: parts.dir)
        let mail = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "AW: Befund",
                                textBody: Self.reply, attachments: [.init(filename: "befund.pdf", contentType: "application/pdf", data: pdf)])
        let record = try await parts.submit(mail)
        XCTAssertEqual(record.state, .accepted, record.detail ?? "")
        let (job, pages) = try await faxed(parts)
        let expected = try await FaxRenderer.render(.pdf(pdf), options: RenderOptions())
        XCTAssertEqual(pages.count, 2, "the one-line note costs no page")
        XCTAssertEqual(pages.map(\.bitmap), expected.map(\.bitmap), "the fax is the PDF, page for page")
        XCTAssertEqual(job.documentPage, 0)
    }

    func testFaxBodyHeader_yes_addsTheOwnTextAsPage1_withoutTheQuote_andTheThumbnailStaysOnTheDocument() async throws {
        var parts = try await SubmissionParts.make()
        let pdf = try Self.pdf(pages: 1, in: parts.dir)
        let mail = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "Befund",
                                headers: [("X-Fax-Body", "yes")], textBody: Self.reply,
                                attachments: [.init(filename: "befund.pdf", contentType: "application/pdf", data: pdf)])
        _ = try await parts.submit(mail)
        let (job, pages) = try await faxed(parts)
        XCTAssertEqual(pages.count, 2)
        let ownTextOnly = try await FaxRenderer.render(.text("Bitte faxen."), options: RenderOptions())
        XCTAssertEqual(pages[0].bitmap, ownTextOnly[0].bitmap, "the text page holds the sender's line and nothing of the quoted thread")
        XCTAssertEqual(job.documentPage, 1, "the send report shows the PDF, not the text page")
    }

    func testNoAttachment_theOwnTextIsTheFax_withoutQuoteOrSignature() async throws {
        var parts = try await SubmissionParts.make()
        let mail = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "Notiz",
                                textBody: Self.reply)
        _ = try await parts.submit(mail)
        let (_, pages) = try await faxed(parts)
        let ownTextOnly = try await FaxRenderer.render(.text("Bitte faxen."), options: RenderOptions())
        XCTAssertEqual(pages.map(\.bitmap), ownTextOnly.map(\.bitmap))
    }

    func testExtensionSetting_never_withoutAttachment_isRefusedInGerman() async throws {
        var parts = try await SubmissionParts.make(senders: "fax_body: never")
        let mail = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "Notiz",
                                textBody: "Nur Text")
        let record = try await parts.submit(mail)
        XCTAssertEqual(record.state, .rejected)
        let reply = try String(contentsOfFile: parts.outbox.directory + "/refusal-\(record.id!).eml", encoding: .utf8)
        let text = try ParsedReply(reply).body
        XCTAssertTrue(text.contains("es gibt nichts zu faxen: die Nachricht hat keine Anlage, und ihr Text wird nicht gefaxt"), text)
    }

    func testExtensionSetting_always_faxesTheTextBesideTheAttachment() async throws {
        var parts = try await SubmissionParts.make(senders: "fax_body: always")
        let pdf = try Self.pdf(pages: 1, in: parts.dir)
        let mail = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "Befund",
                                textBody: "Anbei der Befund.", attachments: [.init(filename: "b.pdf", contentType: "application/pdf", data: pdf)])
        _ = try await parts.submit(mail)
        let (job, pages) = try await faxed(parts)
        XCTAssertEqual(pages.count, 2)
        XCTAssertEqual(job.documentPage, 1)
        // ... unless the sender says no.
        var parts2 = try await SubmissionParts.make(senders: "fax_body: always")
        let mail2 = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "Befund",
                                 headers: [("X-Fax-Body", "no")], textBody: "Anbei der Befund.",
                                 attachments: [.init(filename: "b.pdf", contentType: "application/pdf", data: pdf)])
        _ = try await parts2.submit(mail2)
        let second = try await faxed(parts2)
        XCTAssertEqual(second.pages.count, 1)
    }

    func testCoverPage_shortTextGoesIntoItsMessageField_notOntoAPage() async throws {
        var parts = try await SubmissionParts.make(senders: "cover_page: true")
        let pdf = try Self.pdf(pages: 1, in: parts.dir)
        let mail = IncomingMail(fromAddress: "alice@example.test", to: ["0301234567+geheim2026@fax.example.test"], subject: "Befund",
                                textBody: "Sehr geehrte Kollegin,\nanbei der Befund.\n\n> altes Zitat Erika Mustermann\n",
                                attachments: [.init(filename: "b.pdf", contentType: "application/pdf", data: pdf)])
        _ = try await parts.submit(mail)
        let (job, pages) = try await faxed(parts)
        XCTAssertEqual(pages.count, 2, "cover page + the PDF; the text is on the cover")
        XCTAssertEqual(job.documentPage, 1, "the thumbnail skips the cover page")
        // The message field (below the table, 376 pt from the top) carries the text.
        let top = Int(Double(pages[0].height) * 376.0 / 842.0), bottom = Int(Double(pages[0].height) * 480.0 / 842.0)
        var black = 0
        for y in top..<bottom { for x in 0..<pages[0].width where pages[0].isBlack(x: x, y: y) { black += 1 } }
        XCTAssertGreaterThan(black, 500, "the cover's message field is filled")
        let plain = try await CoverPage.render(sender: "alice@example.test", recipient: "0301234567", recipientNumber: "+49301234567",
                                               subject: "Befund", pages: 2, date: Date(), comment: nil, language: "de")
        var plainBlack = 0
        for y in top..<bottom { for x in 0..<plain.width where plain.isBlack(x: x, y: y) { plainBlack += 1 } }
        XCTAssertEqual(plainBlack, 0, "without a message the field is empty")
    }
}

/// A submission processor over real SQLite and a real (not running) outbox, with extension "Empfang" (German).
struct SubmissionParts {
    let dir: TemporaryDirectory
    let storage: SQLiteStorage
    let outbox: Outbox
    let processor: SubmissionProcessor
    var uid: Int64 = 0

    static func make(senders: String = "", language: String = "de") async throws -> SubmissionParts {
        let dir = try TemporaryDirectory("mail-content")
        let yaml = """
            spool_directory: \(dir.path)/spool
            smtp: {host: localhost, port: 587, security: starttls}
            mail: {from: "Fax <fax@example.test>"}
            capi: {driver: rcapi, host: 127.0.0.1}
            extensions:
              - name: Empfang
                numbers: ["100"]
                email: [empfang@example.test]
                language: \(language)
                senders:
                  allow: [alice@example.test]
                  require_authentication: none
                  secret: geheim2026
            \(senders.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            outgoing:
              fax_domains: [fax.example.test]
              line: {country_code: "49", area_code: "30"}
            """
        let config = try ConfigLoader.parse(yaml)
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)),
                                logger: Logger(label: "t"))
        let processor = try SubmissionProcessor(
            settings: .init(spoolDirectory: dir.path + "/spool", from: MailAddress("fax@example.test"), hostname: "gw.test"),
            config: config, storage: storage, outbox: outbox, logger: Logger(label: "t"), jobsAdded: {})
        return SubmissionParts(dir: dir, storage: storage, outbox: outbox, processor: processor)
    }

    mutating func submit(_ mail: IncomingMail) async throws -> IntakeRecord {
        uid += 1
        let raw = dir.path + "/raw-\(uid).eml"
        try Data("x".utf8).write(to: URL(fileURLWithPath: raw))
        let (record, _) = try await storage.recordIntake(IntakeRecord(source: "test", uidValidity: 1, uid: uid, messageID: nil, rawPath: raw))
        return try await processor.process(mail, intake: record)
    }
}
