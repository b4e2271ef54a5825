import BasicRedaction
import FaxgateCore
import Foundation
import Logging
import XCTest

final class RedactionCorpusTests: XCTestCase {
    let pseudonyms = Pseudonymizer(key: Array("a fixed test key of 32 bytes....".utf8), countryCode: "49")
    var privacy: PrivacySettings {
        var p = PrivacySettings()
        p.names = ["Anna Beispiel", "Dr. Otto Normal"]
        p.redactPatterns = [#"Kd-Nr\. ?\d+"#]
        return p
    }
    var redactor: Redactor { try! BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: privacy) }

    /// (line, personal values that must not survive)
    let corpus: [(String, [String])] = [
        ("incoming call from=+49 30 1234567 to=100", ["1234567"]),
        ("incoming call from=+49-30-1234567", ["1234567"]),
        ("caller 0049 30 1234567 rang", ["1234567"]),
        ("caller 030 1234567 rang", ["1234567"]),
        ("caller 030/1234567 rang", ["1234567"]),
        ("caller 030-123 45 67 rang", ["123 45 67"]),
        ("caller (030) 123456 rang", ["123456"]),
        ("caller +49 (0)30 1234567 rang", ["1234567"]),
        ("caller 030.123.4567 rang", ["123.4567"]),
        ("caller +4930123456789 rang", ["123456789"]),
        ("mobile 0170 1234567", ["1234567"]),
        ("DDI 0301234567-100 called", ["1234567"]),
        ("DDI +49 30 12345-678 called", ["12345-678"]),
        ("US +1 (212) 555-1234", ["555-1234"]),
        ("bare 1234567 digits", ["1234567"]),
        ("mail to alice@example.com queued", ["alice", "example.com"]),
        ("mail to a.b+fax@sub.example.co.uk", ["a.b+fax", "sub.example"]),
        ("RFC 3192 FAX=+4930123@fax.example.test", ["4930123", "fax.example"]),
        ("fax session up rate=14400 tsi=\"PRAXIS MUELLER\"", ["PRAXIS", "MUELLER"]),
        ("remoteStationID=HAUSARZT KOCH pages=3", ["HAUSARZT", "KOCH"]),
        ("station id: Kanzlei Weber, pages 2", ["Kanzlei", "Weber"]),
        ("recipient Anna Beispiel notified", ["Anna", "Beispiel"]),
        ("for dr. otto normal", ["otto", "normal"]),
        ("customer Kd-Nr. 4711 called", ["4711"]),
        ("page data SUkqAAgAAAASAP4ABAABAAAAAAAAAAABAwABAAAAwAYAAAEBAwABAAAAkgkAAAIBAwABAAAAAQAAAAMBAwABAAAAAwAAAA== end", ["SUkqAAgAAAASAP4ABAAB"]),
    ]

    func testCorpus_noPersonalValueSurvives() {
        for (line, secrets) in corpus {
            let out = redactor.redact(line)
            for secret in secrets {
                XCTAssertFalse(out.contains(secret), "'\(secret)' survived in: \(out)")
            }
            XCTAssertNotEqual(out, line, "nothing redacted in: \(line)")
        }
    }

    func testLinesWithoutPersonalData_areUnchanged() {
        let clean = [
            "2025-01-31T12:30:00.123Z info faxgate.reception: [17] call ended: normal clearing pages=3",
            "2025-01-31T12:30:00.123Z info faxgate.capi: CAPI registered applID=1 controllers=[1]",
            "fax session up rate=14400 fine=true extension=Empfang to=100",
            "outbox started pending=0",
            "retention: received_faxes items=2 rows=14 files=6 held=0",
            "call ended reason=0x3490 b3=0x0000",
            "faxgate 0.1.0 starting extensions=2 spool=/var/spool/faxgate transport=capi",
        ]
        for line in clean { XCTAssertEqual(redactor.redact(line), line) }
    }

    func testSameNumber_sameePseudonym_inAnyNotation() {
        let notations = ["+49 30 1234567", "030/1234567", "0049 30 1234567", "030-123 45 67", "+49 (0)30 1234567", "+49-30-1234567"]
        let tokens = Set(notations.map { redactor.redact("from \($0) x") })
        XCTAssertEqual(tokens.count, 1, "\(tokens)")
        XCTAssertTrue(tokens.first!.hasPrefix("from [phone:"), tokens.first!)
        // A different number gets a different pseudonym; a different key gives different pseudonyms.
        XCTAssertNotEqual(redactor.redact("from 030 7654321 x"), tokens.first!)
        let other = try! BasicRedaction.snapshotRedactor(pseudonyms: Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49"), privacy: privacy)
        XCTAssertNotEqual(other.redact("from 030/1234567 x"), tokens.first!)
        // Addresses are case-insensitive.
        XCTAssertEqual(redactor.redact("Alice@Example.com"), redactor.redact("alice@example.com"))
        // A second pass over redacted text changes nothing (snapshots re-redact log files).
        let once = redactor.redact(corpus.map(\.0).joined(separator: "\n"))
        XCTAssertEqual(redactor.redact(once), once)
    }

    func testLogHandler_writesRedactedDailyFiles_evenForDebugLines_andRotatesAtMidnight() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("logs-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = TestClock(Date(timeIntervalSince1970: 1_738_367_999))  // 2025-01-31T23:59:59Z
        let files = DailyLogFiles(directory: dir, now: { clock.now })
        let stderrCopy = dir + "-stderr.log"
        defer { try? FileManager.default.removeItem(atPath: stderrCopy) }
        let handler = RedactingLogHandler(label: "t", level: .trace, redactor: redactor, redactFrom: .info,
                                          sink: LogSink(appendingTo: stderrCopy), files: files)
        var logger = Logger(label: "t", factory: { _ in handler })
        logger.logLevel = .trace
        logger.debug("raw for the developer: 030 1234567")
        clock.now = clock.now.addingTimeInterval(2)
        logger.info("next day: alice@example.com")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(names, ["faxgate-2025-01-31.log", "faxgate-2025-02-01.log"])
        let day1 = try String(contentsOfFile: dir + "/" + names[0], encoding: .utf8)
        let day2 = try String(contentsOfFile: dir + "/" + names[1], encoding: .utf8)
        XCTAssertFalse(day1.contains("1234567"), day1)
        XCTAssertTrue(day1.contains("[phone:"), day1)
        XCTAssertFalse(day2.contains("alice"), day2)
        // stderr keeps the configured behaviour: debug raw, info redacted.
        let err = try String(contentsOfFile: stderrCopy, encoding: .utf8)
        XCTAssertTrue(err.contains("030 1234567"))
        XCTAssertFalse(err.contains("alice"))
    }
}

final class TestClock: @unchecked Sendable {
    var now: Date
    init(_ now: Date) { self.now = now }
}
