import FaxDocument
import FaxgateCore
import FaxRender
import Foundation
import Logging
import MailOut
import SQLiteStorage
import TestSupport
import XCTest

/// German mails are German throughout and English mails English: every refusal reason, status mail and
/// reception mail is rendered in both languages and scanned for the other language's words and sentences.
final class MailLanguageTests: XCTestCase {
    /// Words that only occur in English sentences of ours (checked as whole words, case-insensitive).
    static let englishWords = ["the", "is", "not", "could", "was", "and", "of", "no", "be", "for", "with", "has", "than",
                               "cannot", "your", "message", "attachment", "number", "page", "pages", "sent", "failed", "reason",
                               "unknown", "interrupted", "damaged", "while", "did", "there"]
    static let germanWords = ["der", "die", "das", "und", "nicht", "ist", "wurde", "eine", "keine", "seite", "seiten", "für",
                              "sie", "ihre", "nachricht", "anlage", "grund", "konnte", "unbekannt", "abgebrochen", "gesendet", "über"]

    /// `text` minus the values the test put in (numbers, file names) — what remains is ours.
    static func words(_ text: String) -> [String] {
        text.lowercased().components(separatedBy: CharacterSet.letters.inverted).filter { !$0.isEmpty }
    }

    static func assertGerman(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let found = Set(words(text)).intersection(englishWords)
        XCTAssertTrue(found.isEmpty, "English words \(found.sorted()) in the German \(what):\n\(text)", file: file, line: line)
    }

    static func assertEnglish(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let found = Set(words(text)).intersection(germanWords)
        XCTAssertTrue(found.isEmpty, "German words \(found.sorted()) in the English \(what):\n\(text)", file: file, line: line)
        XCTAssertNil(text.rangeOfCharacter(from: CharacterSet(charactersIn: "äöüÄÖÜß„“")), "German letters in the English \(what):\n\(text)",
                     file: file, line: line)
    }

    /// Every reason a refusal can carry, with sample values free of words of either language.
    static var reasons: [any LocalizedReason] {
        let renderErrors: [RenderError] = [
            RenderError(.unsupported, "images of type image/x-foo are not supported (JPEG, PNG and GIF are)"),
            RenderError(.encrypted, "the PDF is password-protected"),
            RenderError(.broken, "the PDF cannot be read: Error: /syntaxerror in --nostringval--"),
            RenderError(.timeout, "Ghostscript gave up after 60 s"),
            RenderError(.tooLarge, "the PDF needs more than 512 MB to render"),
            RenderError(.tooManyPages, "the document has more than 200 pages"),
            RenderError(.tooManyPages, "the text needs more than 200 pages", german: "der Text braucht mehr als 200 Seiten"),
        ]
        let parts: [MailPart] = [.text, .html, .cover, .attachment(filename: "x1.pdf", contentType: "application/pdf"),
                                 .attachment(filename: nil, contentType: "image/png")]
        var all: [any LocalizedReason] = [
            SubmissionReason.noSuchExtension("Xyz"), SubmissionReason.extensionNotConfigured("Xyz"), SubmissionReason.numberNotUnderstood,
            SubmissionReason.noNumber, SubmissionReason.numberNotDiallable, SubmissionReason.damaged, SubmissionReason.skipUnsupportedHint,
            SubmissionReason.nothingToFax, SubmissionReason.textNotFaxed, SubmissionReason.tooManyPages(limit: 200), SubmissionReason.badSendAt("20261123"),
            SubmissionReason.tooLarge(megabytes: 12, limit: 10), SubmissionReason.stoppedGateway, SubmissionReason.unreadable,
            DialPolicy.Refusal.blockedPrefix(number: "+49900123", prefix: "+49900"), DialPolicy.Refusal.international("+41441234567"),
            DialPolicy.Refusal.jobLimit(limit: 50), DialPolicy.Refusal.pageLimit(limit: 6, used: 4, wanted: 3),
            NumberPlan.Failure.empty, NumberPlan.Failure.invalidCharacters("0x1"), NumberPlan.Failure.tooShort("12"),
            NumberPlan.Failure.tooLong("1234567890123456"), NumberPlan.Failure.localNumberWithoutAreaCode("1234567"),
            SFFProblem.badLines(page: 2, count: 3), SFFProblem.wrongLineWidth(page: 1, count: 1), SFFProblem.truncated(page: 2),
            SFFProblem.missingEndMarker, SFFProblem.unsupportedCoding(page: 1, coding: 2), SFFProblem.emptyPage(page: 3),
            SFFProblem.noPages, SFFError.notSFF, SFFError.noPageHeader(offset: 20),
        ]
        for part in parts {
            all.append(SubmissionReason.unsupportedAttachment(part))
            for error in renderErrors { all.append(SubmissionReason.notConverted(part, error)) }
        }
        for error in renderErrors { all.append(SubmissionReason.coverFailed(error)) }
        return all
    }

    func testEveryRefusalReason_rendersInTheReadersLanguageOnly() {
        let german = OutgoingMailText(language: "de"), english = OutgoingMailText(language: "en")
        let englishTexts = Set(Self.reasons.map { $0.text("en") }), germanTexts = Set(Self.reasons.map { $0.text("de") })
        for reason in Self.reasons {
            let refusal = SubmissionProcessor.Refusal(reason, details: [SubmissionReason.skipUnsupportedHint, NumberPlan.Failure.tooShort("12")])
            let de = german.refusalSubject("Befund 4711") + "\n" + german.refusalBody(refusal, original: "Befund 4711")
            let en = english.refusalSubject("Befund 4711") + "\n" + english.refusalBody(refusal, original: "Befund 4711")
            Self.assertGerman(de.replacingOccurrences(of: "Befund", with: ""), "refusal for \(reason)")
            Self.assertEnglish(en.replacingOccurrences(of: "Befund", with: ""), "refusal for \(reason)")
            for sentence in englishTexts where !germanTexts.contains(sentence) {
                XCTAssertFalse(de.contains(sentence), "English sentence '\(sentence)' in a German mail")
            }
            for sentence in germanTexts where !englishTexts.contains(sentence) {
                XCTAssertFalse(en.contains(sentence), "German sentence '\(sentence)' in an English mail")
            }
        }
    }

    func testStatusMails_andResultTexts_stayInOneLanguage_evenWithTheTransportsEnglishText() {
        let causes = ["success", "busy", "noAnswer", "faxProtocolError", "networkFailure", "invalidNumber", "rejected", "localError",
                      "blockedByPolicy", "canceled", "whatever"]
        for cause in causes {
            var job = FaxJob(intakeID: 1, sender: "a@example.test", senderName: nil, extensionName: "Empfang", language: "de",
                             number: "+49301234567", dialString: "0301234567", subject: "", pages: 3, fine: true, sffPath: "/x",
                             requestMessageID: nil)
            job.id = 7; job.tries = 2; job.pagesSent = 1; job.lastCause = cause; job.remoteStationID = "+49 30 1"
            job.lastText = "remote station disconnected (0x3490): controller connection lost"
            job.dialedAt = Date(); job.bitRate = 14400
            for status: OutgoingMailText.Status in [.sent, .failed, .retrying(next: Date())] {
                let de = OutgoingMailText(language: "de"), en = OutgoingMailText(language: "en")
                Self.assertGerman(de.statusSubject(status, job: job) + "\n" + de.statusBody(status, job: job), "status mail (\(cause))")
                Self.assertEnglish(en.statusSubject(status, job: job) + "\n" + en.statusBody(status, job: job), "status mail (\(cause))")
                XCTAssertTrue(en.statusBody(status, job: job).contains("(no subject)"))
                XCTAssertTrue(de.statusBody(status, job: job).contains("(kein Betreff)"))
            }
            job.subject = "(no subject)"
            XCTAssertTrue(OutgoingMailText(language: "de").statusBody(.sent, job: job).contains("(kein Betreff)"), "rows from before")
        }
    }

    func testReceptionMail_germanHasNoTransportEnglish_andDecoderFindingsInGerman() {
        let problemsDE = [SFFProblem.badLines(page: 2, count: 3).text("de"), SFFProblem.truncated(page: 2).text("de")]
        let problemsEN = [SFFProblem.badLines(page: 2, count: 3).text("en"), SFFProblem.truncated(page: 2).text("en")]
        for outcome: CallRecord.Outcome in [.complete, .partial, .failed, .rejected] {
            for reasonText in [nil, "remote station disconnected: the fax was interrupted", problemsDE[0]] {
                let facts = ReceptionMail.Facts(callID: 3, callingNumber: "0301234567", calledNumber: "100", extensionName: "Empfang",
                                                remoteStationID: "+49 30 1", pages: 2, fine: true, bitRate: 14400, startedAt: Date(),
                                                duration: 42, outcome: outcome, reasonText: reasonText, problems: problemsDE)
                let de = ReceptionMail(language: .de)
                Self.assertGerman(de.subject(facts) + "\n" + de.body(facts), "reception mail")
            }
            let facts = ReceptionMail.Facts(callID: 3, callingNumber: "0301234567", calledNumber: "100", extensionName: "Empfang",
                                            remoteStationID: "+49 30 1", pages: 2, fine: true, bitRate: 14400, startedAt: Date(),
                                            duration: 42, outcome: outcome, reasonText: "remote station disconnected", problems: problemsEN)
            let en = ReceptionMail(language: .en)
            Self.assertEnglish(en.subject(facts) + "\n" + en.body(facts), "reception mail")
        }
    }

    /// The sender's Message-ID is attacker-written: a reply echoes it in In-Reply-To only when it is a plain
    /// `<id@host>`; an overlong one or one carrying a header break is left out.
    func testRefusalReply_echoesOnlyAPlainMessageID() async throws {
        var parts = try await SubmissionParts.make()
        let to = ["0301234567+geheim2026@fax.example.test"]
        let docx: IncomingMail.Attachment = .init(filename: "a.docx", contentType: "application/msword", data: Array("x".utf8))
        for (id, echoed) in [("<abc.1@example.test>", true), ("<" + String(repeating: "a", count: 400) + "@example.test>", false),
                             ("<a@b>\r\nBcc: victim@example.org", false), ("<a b@example.test>", false)] {
            let mail = IncomingMail(fromAddress: "alice@example.test", to: to, subject: "x", messageID: id, attachments: [docx])
            let record = try await parts.submit(mail)
            let raw = try String(contentsOfFile: parts.outbox.directory + "/refusal-\(record.id!).eml", encoding: .utf8)
            let head = raw.components(separatedBy: "\r\n\r\n")[0]
            XCTAssertEqual(head.contains("In-Reply-To: \(id)"), echoed, head)
            XCTAssertFalse(head.contains("Bcc:"), head)
            XCTAssertLessThan(head.count, 2000, "nothing of the sender's at length in the header")
        }
    }

    /// A call that did not run to its own end says why in the reader's language, from the typed end cause.
    func testReceptionMail_endCause_isToldInTheReadersLanguage() {
        for cause in CallRecord.EndCause.allCases where cause.isInterruption {
            var facts = ReceptionMail.Facts(callID: 3, callingNumber: "0301234567", calledNumber: "100", extensionName: "Empfang",
                                            remoteStationID: nil, pages: 1, fine: true, bitRate: 14400, startedAt: Date(),
                                            duration: 42, outcome: .partial, reasonText: "reception interrupted (gateway stopped during the call)",
                                            problems: [])
            facts.endCause = cause
            let de = ReceptionMail(language: .de).body(facts), en = ReceptionMail(language: .en).body(facts)
            Self.assertGerman(de, "reception mail (\(cause))")
            Self.assertEnglish(en, "reception mail (\(cause))")
            XCTAssertEqual(de.contains(ReceptionMail.endCauseText(cause, .de)!), true, de)
            XCTAssertEqual(en.contains(ReceptionMail.endCauseText(cause, .en)!), true, en)
            XCTAssertFalse(de.contains("vorzeitig beendet"), "a German reason per cause, not the generic sentence")
        }
    }

    /// Through the processor, as a mail arrives: each refusal a German sender can get is German, the quoted
    /// Subject is cut short and cleaned of line breaks and bidi controls.
    func testRefusalsThroughTheProcessor_areGermanThroughout_andQuoteTheSubjectShortAndClean() async throws {
        var parts = try await SubmissionParts.make()
        let docx: IncomingMail.Attachment = .init(filename: "brief.docx", contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                                                  data: Array("PK\u{03}\u{04}not a word file".utf8))
        let broken: IncomingMail.Attachment = .init(filename: "kaputt.pdf", contentType: "application/pdf", data: Array("%PDF-1.4\n garbage".utf8))
        let to = ["0301234567+geheim2026@fax.example.test"]
        let longSubject = "Befund \u{202E}gnagnI\u{202C} " + String(repeating: "Erika Mustermann ", count: 20) + "\r\nBcc: x@evil.test"
        let mails: [IncomingMail] = [
            IncomingMail(fromAddress: "alice@example.test", to: ["0301234567@fax.example.test"], subject: "Auftrag 1", textBody: "x"),
            IncomingMail(fromAddress: "alice@example.test", to: ["09001234567+geheim2026@fax.example.test"], subject: "Auftrag 2", textBody: "x"),
            IncomingMail(fromAddress: "alice@example.test", to: ["12+geheim2026@fax.example.test"], subject: "Auftrag 3", textBody: "x"),
            IncomingMail(fromAddress: "alice@example.test", to: to, subject: "Auftrag 4", attachments: [docx]),
            IncomingMail(fromAddress: "alice@example.test", to: to, subject: "Auftrag 5", attachments: [broken]),
            IncomingMail(fromAddress: "alice@example.test", to: to, subject: "Auftrag 6", textBody: "> nur Zitat\n-- \nAlice"),
            IncomingMail(fromAddress: "alice@example.test", to: to, subject: "Auftrag 7", headers: [("X-Fax-Send-At", "morgen früh")], textBody: "x"),
            IncomingMail(fromAddress: "alice@example.test", to: to, subject: "Auftrag 8", textBody: "x", damage: ["base64 of part 2 is broken"]),
            IncomingMail(fromAddress: "alice@example.test", to: to, subject: longSubject, attachments: [docx]),
        ]
        var replies: [String] = []
        for mail in mails {
            let record = try await parts.submit(mail)
            XCTAssertEqual(record.state, .rejected, "\(mail.subject): \(record.detail ?? "")")
            let path = parts.outbox.directory + "/refusal-\(record.id!).eml"
            if mail.subject == "Auftrag 1" {
                // No secret and no proven address: the secret is the only authentication here, so anyone could
                // have written this From. Nothing goes to it (no backscatter); the journal says so.
                XCTAssertEqual(record.reply, .suppressed)
                XCTAssertFalse(FileManager.default.fileExists(atPath: path))
                continue
            }
            replies.append(try String(contentsOfFile: path, encoding: .utf8))
        }
        let jobs = try await parts.storage.jobs(in: Set(FaxJob.State.allCases))
        XCTAssertTrue(jobs.isEmpty, "nothing refused was queued")
        for reply in replies {
            let message = try ParsedReply(reply)
            Self.assertGerman(message.body + "\n" + message.subject, "refusal reply")
            XCTAssertTrue(message.body.contains("Grund: "), message.body)
        }
        let long = try ParsedReply(replies.last!)
        XCTAssertLessThanOrEqual(long.subject.count, "Fax nicht gesendet: ".count + 80, long.subject)
        XCTAssertNil(long.subject.rangeOfCharacter(from: CharacterSet(charactersIn: "\u{202E}\u{202C}\r\n")), long.subject)
        XCTAssertFalse(reply(long.raw, contains: "Bcc:"), "no header smuggled through the quoted Subject")
        let quotedLine = try XCTUnwrap(long.body.split(separator: "\n").first { $0.hasPrefix("Betreff Ihrer Nachricht: ") })
        XCTAssertLessThanOrEqual(quotedLine.count, "Betreff Ihrer Nachricht: ".count + 80)
        let repeats = long.body.components(separatedBy: "Mustermann").count - 1
        XCTAssertTrue((1...4).contains(repeats), "the Subject is quoted at most 80 characters long: \(repeats) repeats")
    }

    func reply(_ raw: String, contains header: String) -> Bool {
        raw.components(separatedBy: "\r\n\r\n").first?.components(separatedBy: "\r\n").contains { $0.hasPrefix(header) } ?? false
    }
}

/// A reply from the outbox, decoded by Python's email package (as a mail program would read it).
struct ParsedReply {
    var subject: String
    var body: String
    var raw: String
    init(_ raw: String) throws {
        self.raw = raw
        let dir = try TemporaryDirectory("reply")
        try raw.write(toFile: dir.path + "/m.eml", atomically: true, encoding: .utf8)
        let script = """
            import email, email.policy, json, sys
            m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
            print(json.dumps({"subject": str(m["Subject"]), "body": m.get_body(("plain",)).get_content()}))
            """
        let out = try runTool(MailServers.python3, ["-c", script, dir.path + "/m.eml"])
        let json = try JSONSerialization.jsonObject(with: out.stdout) as! [String: String]
        subject = json["subject"]!
        body = json["body"]!
    }
}
