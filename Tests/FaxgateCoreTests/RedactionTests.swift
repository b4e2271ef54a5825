import BasicRedaction
import FaxgateCore
import Logging
import TestSupport
import XCTest

final class RedactionTests: XCTestCase {
    let redactor = Redactor([PhoneNumberRedaction(), EmailAddressRedaction()])

    func testPhoneNumbers_inCommonNotations_areMasked() {
        let samples = [
            "+49 30 1234567", "+49-30-1234567", "0049 30 1234567", "030 1234567", "030/1234567", "030-123 45 67",
            "(030) 123456", "+4930123456789", "01701234567", "0301234567-100", "+1 (212) 555-1234", "1234567",
        ]
        for number in samples {
            let line = "fax from \(number) arrived"
            let out = redactor.redact(line)
            XCTAssertFalse(out.contains(where: \.isNumber), "\(number) survived as: \(out)")
            XCTAssertTrue(out.contains("[phone]"), out)
        }
    }

    func testEmailAddresses_areMasked() {
        for address in ["alice@example.com", "a.b+fax@sub.example.co.uk", "FAX=+4930123@fax.example.test"] {
            let out = redactor.redact("mail to \(address) queued")
            XCTAssertEqual(out, "mail to [email] queued", address)
        }
    }

    func testLinesWithoutPersonalData_areUnchanged() {
        for line in ["call 12 ended: normal clearing", "extension 100 answered", "retry in 30 s", "14400 bit/s, 3 pages",
                     "2026-11-22T10:00:00Z outbox started", "controller 1 ready"] {
            XCTAssertEqual(redactor.redact(line), line)
        }
    }

    func testLogHandler_redactsInfoButNotDebug() throws {
        let dir = try TemporaryDirectory("log")
        let sink = LogSink(appendingTo: dir.path + "/log")
        var logger = Logger(label: "t") { label in
            RedactingLogHandler(label: label, level: .debug, redactor: self.redactor, redactFrom: .info, sink: sink)
        }
        logger.logLevel = .debug
        logger.info("fax from +49 30 1234567", metadata: ["call": "7", "to": "bob@example.com"])
        logger.debug("raw +49 30 1234567")
        let text = try String(contentsOfFile: dir.path + "/log", encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].contains("info t: [7] fax from [phone] to=[email]"), String(lines[0]))
        XCTAssertTrue(lines[1].contains("raw +49 30 1234567"))
    }
}
