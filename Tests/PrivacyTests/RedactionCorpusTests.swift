import BasicRedaction
import MailOut
import SQLiteStorage
import SupportSnapshot
import TestSupport
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

/// Issue 8 point 9: every class of personal data through the real log path — the real `RedactingLogHandler`
/// writing the real daily files, fed by the real `ReceptionPipeline` and by lines shaped like every other call
/// site — and through a real support snapshot opened by 7-Zip; then both are scanned byte by byte.
final class RedactionThroughRealLogsTests: XCTestCase {
    /// One caller in every notation people, exchanges and our own code write.
    static let notations = [
        "+49 30 1234567", "030/123 45 67", "0049301234567", "301234567", "0301234567", "+49 (0)30 1234567",
        "+49\u{00A0}30\u{00A0}1234567", "030\u{2009}1234567", "030\u{202F}123\u{202F}45\u{202F}67", "030\u{2007}1234567",
        "030\u{3000}1234567", "030\u{2013}1234567", "030\u{2014}1234567", "030\u{2212}1234567", "030\u{2011}123\u{2012}4567",
        "030\u{200B}1234567", "\u{FF10}\u{FF13}\u{FF10} \u{FF11}\u{FF12}\u{FF13}\u{FF14}\u{FF15}\u{FF16}\u{FF17}",
        "+49-30-123-45-67", "030.123.45.67",
    ]
    static let glued = ["Tel0301234567", "0301234567abc", "Fax:+4930-1234567;"]
    static let addresses = ["müller@praxis-köln.de", "Ärztin.Özdemir@klinik-düsseldorf.de", "anna.beispiel@example.com", "用户@例子.广告"]
    static let stationIDs = ["Dr. Müller & Partner, Köln", "PRAXIS (KOCH)/Berlin; Nr. 7", "Kanzlei Weber-Schulz!"]
    static let subjects = ["Befund Schneider, Hanna – Labor vom 31.01.2025"]
    static let fileNames = ["Röntgen Bauer Lisa.pdf", "Arztbrief_Wagner-Ilse.tiff"]
    /// Words that must not survive in any form.
    static let words = ["1234567", "Müller", "Mueller", "Köln", "KOCH", "Weber", "Schulz", "Schneider", "Hanna", "Bauer", "Lisa",
                        "Wagner", "Ilse", "Röntgen", "Özdemir", "düsseldorf", "praxis", "beispiel", "用户", "例子", "EVILLINE"]
    /// Values that are not personal and must stay readable.
    static let keep = ["bytes=987654321", "987654321 bytes", "uidvalidity=1700000000", "ncci=0x00010101", "31.01.2025", "12:30:45",
                       "192.168.178.1:5038", "seconds=86400", "8c6d3e0f-4a21-4b6e-9d7a-0987654321ab", "size=7340032"]

    func testEveryClassOfPersonalData_isAbsentFromRealLogFilesAndSnapshot() async throws {
        let dir = try TemporaryDirectory("redaction-real")
        let logDir = dir.path + "/log"
        let pseudonyms = Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49")
        // The redactor serve builds from the default configuration (log.redaction: phone, email).
        let redactor = Redactor(try BasicRedaction.ruleSets(named: ["phone", "email"], pseudonyms: pseudonyms, privacy: PrivacySettings()))
        let files = DailyLogFiles(directory: logDir)
        let stderrCopy = dir.path + "/stderr.log"
        let handler = RedactingLogHandler(label: "faxgate.reception", level: .trace, redactor: redactor, redactFrom: .trace,
                                          sink: LogSink(appendingTo: stderrCopy), files: files)
        var logger = Logger(label: "faxgate.reception", factory: { _ in handler })
        logger.logLevel = .trace
        var events = 0

        // The real reception pipeline logs the caller and the station id of real calls.
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: NoSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(2), giveUpAfter: .seconds(3600)), logger: logger)
        let ext = Extension(name: "Empfang", numbers: [NumberPattern("100")!], recipients: ["empfang@example.test"], formats: [.pdf],
                            language: .de, stationID: "+49 30 9")
        let pipeline = try ReceptionPipeline(
            settings: .init(spoolDirectory: dir.path, from: MailAddress("fax@example.test", displayName: "Fax"),
                            envelopeFrom: "fax@example.test", hostname: "gw.example.test"),
            directory: ExtensionDirectory(extensions: [ext], catchAllName: nil), storage: storage, outbox: outbox, logger: logger)
        for (i, number) in (Self.notations + Self.glued + ["030\u{0}1234567", "030\n1234567"]).enumerated() {
            let call = IncomingCall(handle: UInt32(i + 1), controller: 1, service: .fax, calledNumber: i % 2 == 0 ? "100" : "999",
                                    callingNumber: number, callingNumberRestricted: false)
            if case .answerFax(let answer) = await pipeline.decide(call) {
                let tsi = Self.stationIDs[i % Self.stationIDs.count] + (i == 0 ? "\nINFO faked EVILLINE" : "")
                await pipeline.faxConnected(receptionID: answer.receptionID, info: FaxSessionInfo(bitRate: 14400, pages: 1, remoteStationID: tsi))
                events += 1
            }
            events += 1
        }
        // Lines shaped like the other call sites: queue, transport, intake, outbox, refusals.
        for number in Self.notations {
            logger.info("dialling", metadata: ["job": "7", "number": "\(number)", "try": "1"])
            logger.info("incoming call", metadata: ["from": "\(number)", "to": "100", "service": "fax", "plci": "101"])
            events += 2
        }
        for address in Self.addresses {
            logger.notice("mail refused: the sender \(address) is not allowed to send faxes through this gateway", metadata: ["intake": "3"])
            logger.info("mail delivered to SMTP server", metadata: ["outbox": "refusal-3", "to": "\(address)"])
            events += 2
        }
        for name in Self.fileNames {
            logger.notice("mail refused: the attachment '\(name)' (application/x-foo) cannot be faxed", metadata: ["intake": "4"])
            logger.notice("skipped part", metadata: ["filename": "\(name)", "intake": "4"])
            events += 2
        }
        for subject in Self.subjects {
            logger.info("mail accepted", metadata: ["subject": "\(subject)", "jobs": "[1]"])
            logger.info("order mail Subject: \(subject)")
            events += 2
        }
        for station in Self.stationIDs {
            logger.info("fax session up", metadata: ["tsi": "\(station)", "rate": "9600"])
            logger.info("remote station id: \(station)")
            events += 2
        }
        logger.info("counters", metadata: ["bytes": "987654321", "uidvalidity": "1700000000", "ncci": "0x00010101", "seconds": "86400",
                                           "size": "7340032", "id": "8c6d3e0f-4a21-4b6e-9d7a-0987654321ab"])
        logger.info("stored 987654321 bytes at 31.01.2025 12:30:45 from 192.168.178.1:5038")
        events += 2

        let logFiles = DailyLogFiles.files(in: logDir)
        XCTAssertEqual(logFiles.count, 1)
        let logBytes = try Data(contentsOf: URL(fileURLWithPath: logFiles[0].path))
        let logText = String(decoding: logBytes, as: UTF8.self)
        // One event, one line: a station id with a line break forges nothing.
        XCTAssertEqual(logText.split(separator: "\n", omittingEmptySubsequences: false).count - 1, events, logText)
        assertNoPersonalData(logBytes, where: "log file")
        for value in Self.keep { XCTAssertTrue(logText.contains(value), "'\(value)' was redacted: \(logText)") }

        // The same caller has one pseudonym in every line, whichever notation the line used.
        let token = pseudonyms.phone("+49 30 1234567")
        XCTAssertEqual(token, pseudonyms.token(for: SubjectID("030 1234567", countryCode: "49")!), "gdpr export finds the lines")
        for line in logText.split(separator: "\n") where line.contains("[phone:") {
            XCTAssertTrue(line.contains(token), "another pseudonym: \(line)")
        }
        XCTAssertFalse(logText.contains("[phone]"))

        // A real snapshot of those logs, opened with 7-Zip, carries none of it either.
        let config = """
            spool_directory: \(dir.path)
            extensions:
              - name: Empfang
                numbers: ["100"]
                email: [\(Self.addresses[0]), \(Self.addresses[1])]
                station_id: "+49 30 1234567"
            privacy:
              names: []
            """
        let request = SnapshotRequest(
            configText: config, logDirectory: logDir, outputDirectory: dir.path + "/snapshots", from: nil, to: nil,
            versions: ["faxgate test"], capiInfo: "driver: rcapi\n" + logText, statistics: ["calls": 1],
            redactor: try BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: PrivacySettings()), redactionRules: BasicRedaction.names)
        let result = try SnapshotBuilder.create(request)
        let out = dir.path + "/out"
        try runTool(sevenZip, ["x", "-p\(result.passphrase)", "-o\(out)", result.path])
        var snapshotBytes = Data()
        for name in try FileManager.default.subpathsOfDirectory(atPath: out) {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: out + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                snapshotBytes += try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
            }
        }
        XCTAssertGreaterThan(snapshotBytes.count, logBytes.count / 2)
        assertNoPersonalData(snapshotBytes, where: "snapshot")
        XCTAssertTrue(String(decoding: snapshotBytes, as: UTF8.self).contains(token), "the snapshot keeps the same pseudonym")
    }

    /// Every notation, every personal word: as UTF-8 (composed and decomposed), and as the bare digit runs.
    func assertNoPersonalData(_ bytes: Data, where place: String, file: StaticString = #filePath, line: UInt = #line) {
        let haystack = [UInt8](bytes)
        var needles = Self.notations + Self.glued + Self.addresses + Self.stationIDs + Self.subjects + Self.fileNames + Self.words
        needles += ["301234567", "49301234567", "0301234567", "123 45 67", "123-45-67", "123.45.67"]
        for n in needles {
            for form in Set([n, n.precomposedStringWithCanonicalMapping, n.decomposedStringWithCanonicalMapping]) {
                XCTAssertFalse(contains(haystack, Array(form.utf8)), "'\(form)' found in the \(place)", file: file, line: line)
            }
        }
        // Case-insensitively for the words (a station id may be upper-cased).
        let lower = String(decoding: bytes, as: UTF8.self).lowercased()
        for w in Self.words { XCTAssertFalse(lower.contains(w.lowercased()), "'\(w)' found in the \(place)", file: file, line: line) }
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return true }
        }
        return false
    }

    func testOneNumber_oneAddress_onePseudonym_inAnyNotation() {
        let p = Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49")
        let tokens = Set((Self.notations + ["030 / 123 45 - 67"]).map { p.phone($0) })
        XCTAssertEqual(tokens.count, 1, "\(tokens)")
        XCTAssertNotEqual(p.phone("+43 30 1234567"), tokens.first!, "another country is another number")
        let redactor = Redactor(try! BasicRedaction.ruleSets(named: ["phone", "email"], pseudonyms: p, privacy: PrivacySettings()))
        // Glued to letters, the number is still found and still the same.
        for glued in Self.glued { XCTAssertTrue(redactor.redact(glued).contains(tokens.first!), redactor.redact(glued)) }
        XCTAssertEqual(p.email("müller@praxis-köln.de"), p.email("Mu\u{0308}ller@Praxis-Ko\u{0308}ln.de"))
        XCTAssertEqual(redactor.redact("to=müller@praxis-köln.de"), "to=" + p.email("müller@praxis-köln.de"))
    }

    func testPrivacyCountryCode_defaultsToTheLines() throws {
        let base = """
            spool_directory: /var/spool/faxgate
            smtp: {host: mail.example.com, port: 587}
            mail: {from: "Fax <fax@example.com>"}
            extensions:
              - {name: Empfang, numbers: ["100"], email: [empfang@example.com]}

            """
        XCTAssertEqual(try ConfigLoader.parse(base).privacyCountryCode, "49")
        XCTAssertEqual(try ConfigLoader.parse(base + "outgoing:\n  line: {country_code: \"43\", area_code: \"1\"}\n").privacyCountryCode, "43")
        XCTAssertEqual(try ConfigLoader.parse(base + "privacy: {country_code: \"41\"}\n").privacyCountryCode, "41")
        // Both set and different: one number would get two pseudonyms.
        XCTAssertThrowsError(try ConfigLoader.parse(base + "privacy: {country_code: \"41\"}\noutgoing:\n  line: {country_code: \"43\", area_code: \"1\"}\n"))
    }
}

/// An SMTP side that never delivers; these tests only read what was logged.
struct NoSender: MailSender {
    func send(envelopeFrom: String, recipients: [String], message: [UInt8]) async throws(MailSendFailure) {
        throw MailSendFailure(isTransient: true, description: "not in this test")
    }
}
