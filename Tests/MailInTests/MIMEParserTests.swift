import Foundation
import MailIn
import XCTest

/// A corpus of real-world and hostile messages, written out here byte for byte.
final class MIMEParserTests: XCTestCase {
    private func crlf(_ text: String) -> [UInt8] {
        Array(text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
    }

    private func parse(_ text: String, limits: MIMELimits = MIMELimits()) throws -> ParsedMail {
        try MIMEParser(limits: limits).parse(crlf(text))
    }

    private func withAttachment(_ partHeaders: String, body: String = "aGVsbG8=") -> String {
        """
        From: a@example.test
        To: fax@example.test
        Subject: s
        MIME-Version: 1.0
        Content-Type: multipart/mixed; boundary="b1"

        --b1
        Content-Type: text/plain

        see attachment
        --b1
        \(partHeaders)
        Content-Transfer-Encoding: base64

        \(body)
        --b1--

        """
    }

    func testRFC2231FilenameWithUTF8AndContinuations() throws {
        let single = try parse(withAttachment(
            "Content-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz%20%E2%82%AC.pdf"))
        XCTAssertEqual(single.attachments.first?.filename, "Rechnung März €.pdf")

        let continued = try parse(withAttachment("""
            Content-Type: application/pdf
            Content-Disposition: attachment;
             filename*0*=UTF-8''%C3%9Cbersicht%20;
             filename*1*=Gr%C3%B6%C3%9Fe%20;
             filename*2="und Preis.pdf"
            """))
        XCTAssertEqual(continued.attachments.first?.filename, "Übersicht Größe und Preis.pdf")

        let latin1 = try parse(withAttachment(
            "Content-Type: application/pdf\nContent-Disposition: attachment; filename*=iso-8859-1'de'Gr%FC%DFe.pdf"))
        XCTAssertEqual(latin1.attachments.first?.filename, "Grüße.pdf")
    }

    func testRFC2047FilenameAndNameFallback() throws {
        let encoded = try parse(withAttachment(
            "Content-Type: application/pdf\nContent-Disposition: attachment; filename=\"=?UTF-8?B?w5xiZXJ3ZWlzdW5nLnBkZg==?=\""))
        XCTAssertEqual(encoded.attachments.first?.filename, "Überweisung.pdf")

        let qEncoded = try parse(withAttachment(
            "Content-Type: application/pdf\nContent-Disposition: attachment; filename=\"=?ISO-8859-1?Q?Gr=FC=DFe.pdf?=\""))
        XCTAssertEqual(qEncoded.attachments.first?.filename, "Grüße.pdf")

        let fallback = try parse(withAttachment("Content-Type: application/pdf; name=\"scan 0815.pdf\""))
        let part = try XCTUnwrap(fallback.attachments.first)
        XCTAssertEqual(part.filename, "scan 0815.pdf")
        XCTAssertEqual(part.contentType, "application/pdf")
        XCTAssertTrue(part.isAttachment)
        XCTAssertNil(part.disposition)
        XCTAssertEqual(part.data, Array("hello".utf8))

        let both = try parse(withAttachment(
            "Content-Type: application/pdf; name=\"old.pdf\"\nContent-Disposition: attachment; filename=\"new.pdf\""))
        XCTAssertEqual(both.attachments.first?.filename, "new.pdf", "Content-Disposition wins over name=")
    }

    func testBadBase64IsDecodedPartlyAndReported() throws {
        let mail = try parse(withAttachment(
            "Content-Type: application/pdf; name=\"broken.pdf\"", body: "aGVsbG8g!!d29y*bGQ=\naGk"))
        let part = try XCTUnwrap(mail.attachments.first)
        XCTAssertTrue(part.data.starts(with: Array("hello ".utf8)), "readable prefix kept: \(part.data)")
        XCTAssertTrue(mail.problems.contains { $0.contains("broken.pdf") && $0.contains("base64") }, "\(mail.problems)")
        print("bad base64 problems: \(mail.problems)")
    }

    func testMissingClosingBoundaryIsTolerated() throws {
        let mail = try parse("""
            From: a@example.test
            Subject: unterminated
            Content-Type: multipart/mixed; boundary=XYZ

            --XYZ
            Content-Type: text/plain

            the text
            --XYZ
            Content-Type: application/pdf; name=a.pdf
            Content-Transfer-Encoding: base64

            JVBERi0xLjQK

            """)
        XCTAssertEqual(mail.textBody?.trimmingCharacters(in: .whitespacesAndNewlines), "the text")
        let pdf = try XCTUnwrap(mail.attachments.first)
        XCTAssertEqual(pdf.filename, "a.pdf")
        XCTAssertEqual(pdf.data, Array("%PDF-1.4\n".utf8))
        XCTAssertTrue(mail.problems.contains { $0.contains("XYZ") && $0.contains("never closed") }, "\(mail.problems)")
    }

    func testNestedMessageIsOneAttachment() throws {
        let inner = """
            From: someone@example.org
            Subject: Original =?UTF-8?Q?Bestellung_=C3=9C?=
            Content-Type: multipart/mixed; boundary=inner

            --inner
            Content-Type: text/plain

            inner text
            --inner
            Content-Type: application/pdf; name=inner.pdf
            Content-Transfer-Encoding: base64

            JVBERi0xLjQK
            --inner--
            """
        let mail = try parse("""
            From: Forwarder <fw@example.test>
            Subject: Fwd
            Content-Type: multipart/mixed; boundary=outer

            --outer
            Content-Type: text/plain

            outer text
            --outer
            Content-Type: message/rfc822

            \(inner)

            --outer--

            """)
        XCTAssertEqual(mail.textBody?.trimmingCharacters(in: .whitespacesAndNewlines), "outer text")
        XCTAssertEqual(mail.attachments.count, 1, "the inner PDF is not an attachment of the outer mail: \(mail.parts.map(\.contentType))")
        let message = try XCTUnwrap(mail.attachments.first)
        XCTAssertTrue(message.nested)
        XCTAssertEqual(message.contentType, "message/rfc822")
        XCTAssertEqual(message.filename, "Original Bestellung Ü.eml")
        let innerText = String(decoding: message.data, as: UTF8.self)
        XCTAssertTrue(innerText.hasPrefix("From: someone@example.org\r\n"), innerText)
        XCTAssertTrue(innerText.contains("name=inner.pdf"))

        let untitled = try parse("""
            From: a@example.test
            Content-Type: multipart/mixed; boundary=o

            --o
            Content-Type: message/rfc822

            From: b@example.test

            no subject here
            --o--

            """)
        XCTAssertEqual(untitled.attachments.first?.filename, "message.eml")
    }

    func testEightBitHeadersLatin1AndUTF8() throws {
        var latin1 = Array("From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.test>\r\nTo: ".utf8)
        latin1 += [0x4D, 0xFC, 0x6C, 0x6C, 0x65, 0x72] + Array(" <m@example.test>\r\nSubject: Gr".utf8)
        latin1 += [0xFC, 0xDF, 0x65] + Array(" aus K".utf8) + [0xF6, 0x6C, 0x6E]
        latin1 += Array("\r\nMessage-ID: <x1@example.test>\r\n\r\nbody\r\n".utf8)
        let l = try MIMEParser().parse(latin1)
        XCTAssertEqual(l.subject, "Grüße aus Köln")
        XCTAssertEqual(l.from, MailAddress(name: "Jürgen", address: "j@example.test"))
        XCTAssertEqual(l.to, [MailAddress(name: "Müller", address: "m@example.test")])
        XCTAssertEqual(l.messageID, "<x1@example.test>")

        let utf8 = try MIMEParser().parse(Array(
            "From: \"Zoë Ørsted\" <z@example.test>\r\nSubject: Fax für Zoë – 日本\r\nCc: a@example.test, B <b@example.test>\r\n\r\nbody\r\n".utf8))
        XCTAssertEqual(utf8.subject, "Fax für Zoë – 日本")
        XCTAssertEqual(utf8.from, MailAddress(name: "Zoë Ørsted", address: "z@example.test"))
        XCTAssertEqual(utf8.cc.map(\.address), ["a@example.test", "b@example.test"])
        XCTAssertEqual(utf8.textBody, "body\r\n")
    }

    func testHeadersDateAndAuthenticationResults() throws {
        let mail = try parse("""
            Authentication-Results: mx.example.test;
             dkim=pass header.d=example.org; spf=pass smtp.mailfrom=example.org
            From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>
            To: FAX=+4930123456@fax.example.test
            Date: Tue, 2 Jan 2024 13:14:15 +0100
            Subject: =?UTF-8?B?RmF4IGFuIEtsaW5paw==?=
            Message-ID: <abc.123@example.org>

            hi
            """)
        XCTAssertEqual(mail.authenticationResults, ["mx.example.test; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=example.org"])
        XCTAssertEqual(mail.from?.name, "André")
        XCTAssertEqual(mail.to.first?.address, "FAX=+4930123456@fax.example.test")
        XCTAssertEqual(mail.subject, "Fax an Klinik")
        XCTAssertEqual(mail.date, Date(timeIntervalSince1970: 1_704_197_655))
        XCTAssertEqual(mail.headerValues("subject"), ["Fax an Klinik"])
        XCTAssertEqual(mail.headers.map(\.name), ["Authentication-Results", "From", "To", "Date", "Subject", "Message-ID"])
    }

    /// An encoded word in a trace field stays as written: decoded, "=29=3B" would become a ')' and a ';' that end
    /// a comment in the MTA's verdict and start a forged result.
    func testTraceFields_areNotRFC2047Decoded() throws {
        // Decoded, the comment (the sender's HELO, copied by the MTA) would close early and leave "; dkim=pass …".
        let verdict = "mx.example.test; spf=fail smtp.mailfrom=evil.example (helo =?utf-8?q?x=29=3B_dkim=3Dpass_header.d=3Dexample.org_=28?= )"
        let mail = try parse("Authentication-Results: \(verdict)\nReceived: from =?utf-8?q?by?= by mx.example.test; Tue, 2 Jan 2024 13:14:15 +0100\n"
                             + "X-Copy: \(verdict)\nFrom: a@example.org\nSubject: =?UTF-8?B?RmF4?=\n\nhi\n")
        XCTAssertEqual(mail.headerValues("Authentication-Results"), [verdict])
        // What the old code did to the verdict (and still does to an unstructured field): the smuggled result appears.
        XCTAssertTrue(mail.headerValues("X-Copy").first?.contains("x); dkim=pass header.d=example.org (") == true, "\(mail.headerValues("X-Copy"))")
        XCTAssertEqual(mail.headerValues("Received").first?.hasPrefix("from =?utf-8?q?by?= by"), true)
        XCTAssertEqual(mail.subject, "Fax", "unstructured fields are still decoded")
    }

    func testHugeHeaderIsTooLarge() throws {
        let limits = MIMELimits()
        let big = "X-Filler: " + String(repeating: "a", count: 1000) + "\r\n"
        let text = "From: a@example.test\r\n" + String(repeating: big, count: limits.maxHeaderBytes / 1000 + 10) + "\r\nbody\r\n"
        XCTAssertThrowsError(try MIMEParser().parse(Array(text.utf8))) { error in
            guard case MIMEError.tooLarge(let what, _, let limit)? = error as? MIMEError else { return XCTFail("\(error)") }
            XCTAssertEqual(what, "header block")
            XCTAssertEqual(limit, limits.maxHeaderBytes)
            print("huge header: \(error)")
        }
        // One folded header line that never ends.
        let folded = "Subject: x\r\n" + String(repeating: " y\r\n", count: 70_000) + "\r\nbody"
        XCTAssertThrowsError(try MIMEParser().parse(Array(folded.utf8))) { error in
            guard case MIMEError.tooLarge? = error as? MIMEError else { return XCTFail("\(error)") }
        }
        // A whole message over maxBytes.
        XCTAssertThrowsError(try MIMEParser(limits: MIMELimits(maxBytes: 1000)).parse([UInt8](repeating: 0x61, count: 1001))) { error in
            XCTAssertEqual(error as? MIMEError, .tooLarge(what: "message", bytes: 1001, limit: 1000))
        }
    }

    func testDeepNestingIsRefusedQuickly() throws {
        func nested(_ depth: Int) -> String {
            var text = "From: a@example.test\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n"
            for level in 1..<depth {
                text += "--b\(level - 1)\r\nContent-Type: multipart/mixed; boundary=\"b\(level)\"\r\n\r\n"
            }
            text += "--b\(depth - 1)\r\nContent-Type: text/plain\r\n\r\ndeepest\r\n"
            for level in stride(from: depth - 1, through: 0, by: -1) { text += "--b\(level)--\r\n" }
            return text
        }
        let deep = Array(nested(50).utf8)
        let start = ContinuousClock.now
        XCTAssertThrowsError(try MIMEParser().parse(deep)) { error in
            XCTAssertEqual(error as? MIMEError, .tooDeep(limit: 10))
            XCTAssertTrue("\(error)".contains("nested too deeply"))
        }
        let elapsed = ContinuousClock.now - start
        print("depth 50 refused in \(elapsed)")
        XCTAssertLessThan(elapsed, .seconds(1))

        // 20 000 levels (43 s inside libetpan) is refused just as fast.
        let hostile = Array(nested(20_000).utf8)
        let start2 = ContinuousClock.now
        XCTAssertThrowsError(try MIMEParser().parse(hostile))
        XCTAssertLessThan(ContinuousClock.now - start2, .seconds(1))

        // Depth 10 is within the default limit and parses.
        let ok = try MIMEParser().parse(Array(nested(10).utf8))
        XCTAssertEqual(ok.textBody?.trimmingCharacters(in: .whitespacesAndNewlines), "deepest")
    }

    func testTooManyParts() throws {
        var text = "From: a@example.test\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n"
        for i in 0..<200 { text += "--p\r\nContent-Type: text/plain\r\n\r\npart \(i)\r\n" }
        text += "--p--\r\n"
        XCTAssertThrowsError(try MIMEParser().parse(Array(text.utf8))) { error in
            XCTAssertEqual(error as? MIMEError, .tooManyParts(limit: 100))
        }
        let fifty = try MIMEParser(limits: MIMELimits(maxParts: 250)).parse(Array(text.utf8))
        XCTAssertEqual(fifty.parts.count, 200)
    }

    func testAlternativeTextAndHTML() throws {
        let mail = try parse("""
            From: a@example.test
            Subject: alt
            Content-Type: multipart/alternative; boundary="alt"

            --alt
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            Gr=FC=DFe, bitte faxen.
            --alt
            Content-Type: text/html; charset=utf-8
            Content-Transfer-Encoding: base64

            PHA+R3LDvMOfZTwvcD4=
            --alt--

            """)
        XCTAssertEqual(mail.textBody?.trimmingCharacters(in: .whitespacesAndNewlines), "Grüße, bitte faxen.")
        XCTAssertEqual(mail.htmlBody, "<p>Grüße</p>")
        XCTAssertTrue(mail.attachments.isEmpty)
        XCTAssertEqual(mail.parts.map(\.contentType), ["text/plain", "text/html"])
        XCTAssertEqual(mail.problems, [])
    }

    func testPDFAttachmentRoundTripsByteExact() throws {
        // Every byte value, several times, plus a PDF-looking start: base64 must give back exactly this.
        var pdf = Array("%PDF-1.4\n%\u{E2}\u{E3}\n".utf8)
        for i in 0..<5000 { pdf.append(UInt8(truncatingIfNeeded: i &* 31 &+ i >> 3)) }
        pdf += Array(0...255)
        let encoded = Data(pdf).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let text = """
            From: Praxis <praxis@example.test>
            To: FAX=+4930555@fax.example.test
            Subject: Befund
            Message-ID: <pdf-1@example.test>
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="----=_Part_0_1"

            This is a multi-part message in MIME format.
            ------=_Part_0_1
            Content-Type: text/plain; charset=utf-8

            Bitte an die Nummer faxen.
            ------=_Part_0_1
            Content-Type: application/pdf; name="Befund.pdf"
            Content-Disposition: attachment; filename="Befund.pdf"
            Content-Transfer-Encoding: base64

            \(encoded)
            ------=_Part_0_1--

            """
        let mail = try parse(text)
        let part = try XCTUnwrap(mail.attachments.first)
        XCTAssertEqual(part.filename, "Befund.pdf")
        XCTAssertEqual(part.disposition, "attachment")
        XCTAssertEqual(part.data.count, pdf.count)
        XCTAssertEqual(part.data, pdf)
        XCTAssertEqual(mail.messageID, "<pdf-1@example.test>")
        XCTAssertEqual(mail.problems, [])
    }
}
