import Foundation
import XCTest
@testable import MailOut

final class MIMERenderingTests: XCTestCase {
    let germanSubject = "Fax von Jürgen Müller: Größenänderung übermittelt – Grüße aus Köln, Straße 5, 3 Seiten, Empfänger Ärztekammer"

    func sampleMessage(attachments: [MailAttachment] = []) -> MailMessage {
        MailMessage(
            from: MailAddress("fax@example.test", displayName: "Faxgate Büro"),
            to: [MailAddress("alice@example.test", displayName: "Alice Ämter"), MailAddress("bob@example.test")],
            cc: [MailAddress("carol@example.test", displayName: "Carol \"CJ\" Jones")],
            subject: germanSubject,
            date: Date(timeIntervalSince1970: 1_750_000_000),
            messageID: MailMessage.makeMessageID(domain: "gateway.example.test"),
            extraHeaders: [("Auto-Submitted", "auto-generated"), ("Message-Context", "fax-message")],
            textBody: "Sehr geehrte Damen und Herren,\nanbei ein Fax (3 Seiten).\r\nZeile mit = und Ümlaut und einer sehr langen Zeile, die weit über sechsundsiebzig Zeichen hinausgeht und umbrochen werden muss.\n",
            attachments: attachments)
    }

    func lines(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
    }

    func headerBlock(_ bytes: [UInt8]) -> [String] {
        Array(lines(bytes).prefix(while: { !$0.isEmpty }))
    }

    func testLineEndingsAreCRLFOnlyAndLinesAreShort() throws {
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let rendered = sampleMessage(attachments: [MailAttachment(filename: "fax.pdf", contentType: "application/pdf", data: data)]).render()
        for (index, byte) in rendered.enumerated() {
            if byte == 0x0A { XCTAssertEqual(rendered[index - 1], 0x0D, "bare LF at offset \(index)") }
            if byte == 0x0D { XCTAssertEqual(rendered[index + 1], 0x0A, "bare CR at offset \(index)") }
        }
        for line in lines(rendered) { XCTAssertLessThanOrEqual(line.utf8.count, 998) }
        for line in headerBlock(rendered) { XCTAssertLessThanOrEqual(line.utf8.count, 78, line) }
        // Encoded words: at most 75 characters each.
        let text = String(decoding: rendered, as: UTF8.self)
        let regex = try NSRegularExpression(pattern: "=\\?UTF-8\\?[QB]\\?[^?]*\\?=")
        let words = regex.matches(in: text, range: NSRange(text.startIndex..., in: text))
        XCTAssertGreaterThan(words.count, 2)
        for word in words { XCTAssertLessThanOrEqual(word.range.length, 75) }
        XCTAssertTrue(rendered.allSatisfy { $0 < 0x80 }, "message must be 7-bit clean")
    }

    func testRequiredHeadersArePresent() throws {
        let message = sampleMessage()
        let header = headerBlock(message.render())
        func has(_ prefix: String) -> Bool { header.contains { $0.hasPrefix(prefix) } }
        XCTAssertTrue(has("From: "))
        XCTAssertTrue(has("To: "))
        XCTAssertTrue(has("Cc: "))
        XCTAssertTrue(has("Subject: "))
        XCTAssertTrue(has("MIME-Version: 1.0"))
        XCTAssertTrue(has("Message-ID: <"))
        XCTAssertTrue(has("Auto-Submitted: auto-generated"))
        XCTAssertTrue(has("Content-Type: text/plain; charset=utf-8"))
        let date = try XCTUnwrap(header.first { $0.hasPrefix("Date: ") })
        let regex = try NSRegularExpression(pattern: "^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \\d{4} \\d{2}:\\d{2}:\\d{2} [+-]\\d{4}$")
        XCTAssertEqual(regex.numberOfMatches(in: date, range: NSRange(date.startIndex..., in: date)), 1, date)
        XCTAssertTrue(message.messageID.hasSuffix("@gateway.example.test>"))
        XCTAssertNotEqual(MailMessage.makeMessageID(domain: "x.test"), MailMessage.makeMessageID(domain: "x.test"))
    }

    func testPythonDecodesGermanSubjectNamesAndBody() throws {
        let message = sampleMessage()
        let parsed = try parseWithPython(message.render())
        XCTAssertEqual(parsed.subject, germanSubject)
        XCTAssertEqual(parsed.fromName, "Faxgate Büro")
        XCTAssertEqual(parsed.fromAddress, "fax@example.test")
        XCTAssertEqual(parsed.toAddresses, ["alice@example.test", "bob@example.test"])
        XCTAssertEqual(parsed.toNames.first, "Alice Ämter")
        XCTAssertEqual(parsed.headers["Cc"], "\"Carol \\\"CJ\\\" Jones\" <carol@example.test>")
        XCTAssertEqual(parsed.body?.replacingOccurrences(of: "\r\n", with: "\n"), message.textBody.replacingOccurrences(of: "\r\n", with: "\n"))
        XCTAssertEqual(parsed.defects, [])
    }

    func testHeaderInjectionFromRemoteValuesCreatesNoHeader() throws {
        let stationID = "+49 30 1234\r\nBcc: victim@example.test\r\nX-Evil: 1"
        var message = sampleMessage()
        message.subject = "Fax von \(stationID)"
        message.from = MailAddress("fax@example.test", displayName: "Station \(stationID)")
        message.to = [MailAddress("alice@example.test\r\nBcc: other@example.test", displayName: nil)]
        message.extraHeaders = [("X-Faxgate-Remote-Station", stationID), ("Bcc", "leak@example.test"), ("Bad Name", "x"), ("X-Line\nBreak", "y")]
        let rendered = message.render()
        let header = headerBlock(rendered)
        XCTAssertFalse(header.contains { $0.lowercased().hasPrefix("bcc") }, header.joined(separator: "\n"))
        XCTAssertFalse(header.contains { $0.hasPrefix("X-Evil") })
        let parsed = try parseWithPython(rendered)
        XCTAssertFalse(parsed.headerNames.contains { ["bcc", "x-evil", "bad name"].contains($0.lowercased()) }, "\(parsed.headerNames)")
        XCTAssertEqual(parsed.headers["X-Faxgate-Remote-Station"], "+49 30 1234  Bcc: victim@example.test  X-Evil: 1")
        XCTAssertEqual(parsed.subject, "Fax von +49 30 1234  Bcc: victim@example.test  X-Evil: 1")
        XCTAssertEqual(parsed.defects, [])
    }

    func testAttachmentsRoundTripByteExact() throws {
        var generator = SystemRandomNumberGenerator()
        let binary = (0..<70_001).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let longName = "Überweisungsbestätigung für Müller & Söhne GmbH – März 2025 – Seite 1 bis 12 (Original).pdf"
        let attachments = [
            MailAttachment(filename: "fax-0001.tiff", contentType: "image/tiff; application=faxbw", data: binary),
            MailAttachment(filename: "Übersicht März.pdf", contentType: "application/pdf", data: Array("%PDF-1.4\n".utf8)),
            MailAttachment(filename: longName, contentType: "application/pdf", data: []),
            MailAttachment(filename: "../../etc/passwd\r\nX-Evil: 1", contentType: "text/plain\r\nX-Evil: 2", data: [1, 2, 3]),
        ]
        let rendered = sampleMessage(attachments: attachments).render()
        let text = String(decoding: rendered, as: UTF8.self)
        XCTAssertTrue(text.contains("filename*=UTF-8''%C3%9Cbersicht%20M%C3%A4rz.pdf"), "RFC 2231 filename")
        XCTAssertTrue(text.contains("filename*0*=UTF-8''"), "RFC 2231 continuation for long names")
        XCTAssertTrue(text.contains("Content-Type: multipart/mixed; boundary="))
        XCTAssertFalse(text.contains("\r\nX-Evil"))
        let base64Lines = text.components(separatedBy: "\r\n").filter { $0.count == 76 && !$0.contains(" ") && !$0.contains("=") }
        XCTAssertGreaterThan(base64Lines.count, 900, "base64 wrapped at 76 characters")

        let parsed = try parseWithPython(rendered)
        XCTAssertEqual(parsed.defects, [])
        XCTAssertEqual(parsed.attachments.count, 4)
        XCTAssertEqual(parsed.attachments[0].filename, "fax-0001.tiff")
        XCTAssertEqual(parsed.attachments[0].contentType, "image/tiff")
        XCTAssertEqual(parsed.attachments[0].bytes, binary)
        XCTAssertEqual(parsed.attachments[1].filename, "Übersicht März.pdf")
        XCTAssertEqual(parsed.attachments[1].bytes, Array("%PDF-1.4\n".utf8))
        XCTAssertEqual(parsed.attachments[2].filename, longName)
        XCTAssertEqual(parsed.attachments[2].bytes, [])
        XCTAssertEqual(parsed.attachments[3].filename, ".._.._etc_passwd  X-Evil: 1")
        XCTAssertEqual(parsed.attachments[3].contentType, "application/octet-stream", "malformed type is replaced")
        XCTAssertEqual(parsed.attachments[3].bytes, [1, 2, 3])
        XCTAssertEqual(parsed.subject, germanSubject)
    }

    func testQuotedPrintableAndEncodedWordEdgeCases() throws {
        XCTAssertEqual(String(decoding: MIMEEncoding.quotedPrintable(Array("a \r\nb=c\t".utf8)), as: UTF8.self), "a=20\r\nb=3Dc=09")
        let long = String(repeating: "ä", count: 100)
        for line in String(decoding: MIMEEncoding.quotedPrintable(Array(long.utf8)), as: UTF8.self).components(separatedBy: "\r\n") {
            XCTAssertLessThanOrEqual(line.count, 76)
        }
        // Emoji (4-byte UTF-8) must never be split across encoded words.
        let emoji = String(repeating: "📠", count: 40)
        let parsed = try parseWithPython(MailMessage(
            from: MailAddress("a@example.test"), to: [], subject: emoji, textBody: "").render())
        XCTAssertEqual(parsed.subject, emoji)
        // Text that looks like an encoded word must not be decoded by the recipient.
        let trap = "=?UTF-8?B?QmNjOiB4?= literal"
        XCTAssertEqual(try parseWithPython(MailMessage(from: MailAddress("a@example.test"), to: [], subject: trap, textBody: "").render()).subject, trap)
    }

    func testAddressValidation() {
        XCTAssertNoThrow(try MailAddress.validated("fax@example.test", displayName: "Fax"))
        XCTAssertThrowsError(try MailAddress.validated("a@b@example.test"))
        XCTAssertThrowsError(try MailAddress.validated("no-at-sign"))
        XCTAssertThrowsError(try MailAddress.validated("a@example.test\r\nBcc: x@example.test"))
        XCTAssertFalse(MailAddress("x@example.test\n").isValid)
        XCTAssertEqual(MailAddress("j@example.test", displayName: "Jürgen").description, "=?UTF-8?Q?J=C3=BCrgen?= <j@example.test>")
    }
}
