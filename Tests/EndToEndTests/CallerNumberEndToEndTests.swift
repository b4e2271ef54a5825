import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import VoiceAudio
import XCTest

/// Caller numbers as the network types them (Q.931 type of number, presentation) through libcapi20 into
/// `faxgate serve`, out through the real Postfix and Dovecot: rendered with the line's numbering, and a withheld
/// number appears in no mail, also when the daemon is killed during the call and mails it after the restart.
final class CallerNumberEndToEndTests: XCTestCase {
    /// Berlin: country code 49, area code 30 (prefixes 0 and 00 by default).
    static let berlin = #"{country_code: "49", area_code: "30"}"#
    /// CONNECT_IND calling party number octet 3: national number, ISDN numbering plan.
    static let national: UInt8 = 0x21

    /// A 440 Hz tone at about −12 dBFS in line format: clearly not silence for the recorder.
    static func tone(seconds: Double) -> [UInt8] {
        let count = Int(seconds * Double(G711.sampleRate))
        return G711.lineBytes((0..<count).map { Int16(8000 * sin(2 * Double.pi * 440 * Double($0) / Double(G711.sampleRate))) })
    }

    static let voicemail = """
        max_seconds: 20
        silence_seconds: 0
        min_seconds: 1
        """

    func testNationalCallerNumber_isMailedInE164AndNationalForm_andListedSoInJournalAndShow() async throws {
        let h = try GatewayHarness(.init(numberLine: Self.berlin))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-numbers")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try await h.startGateway()

        var call = SimulatedFaxCall(from: "301234567", to: "100", document: source.sff)
        call.callingTypeAndPlan = Self.national
        let result = try await h.simulator.placeFaxCall(call)
        XCTAssertTrue(result.accepted, "\(result)")

        let mail = try ParsedMail(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)[0], in: work)
        XCTAssertEqual(mail.headers["Subject"], "Fax von +49 30 1234567 / 030 1234567 an Empfang (3 Seiten)")
        XCTAssertEqual(bodyValue(mail.body, "Absender (Rufnummer)"), "+49 30 1234567 / 030 1234567")
        XCTAssertFalse(mail.body.contains("301234567"), "the bare national digits are a different number:\n\(mail.body)")
        let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
        XCTAssertTrue(pdf.filename.hasSuffix("-+49301234567.pdf"), pdf.filename)
        // Received faxes are A4 by default: the 1728-dot line scaled to 595.28 pt, prints at 100 % uncut.
        let size = try pdfPageSize(pdf.path)
        XCTAssertEqual(size.0, 595.28, accuracy: 0.01)
        XCTAssertEqual(size.1, 841.89, accuracy: 0.01)

        let calls = try await h.waitForJournal { $0.first?.state == .mailed }
        let record = try XCTUnwrap(calls.first)
        XCTAssertEqual(record.callingNumber, "301234567", "the journal keeps what the network sent …")
        XCTAssertEqual(record.callingNumberType, .national, "… with its type")
        XCTAssertEqual(record.callingPresentation, .allowed)
        XCTAssertEqual(record.endCause, .cleared)
        let table = try runTool(GatewayHarness.faxgateBinary, ["journal", "-c", h.configPath]).stdoutText
        XCTAssertTrue(table.contains("+49 30 1234567"), table)
        let show = try runTool(GatewayHarness.faxgateBinary, ["show", "\(record.id ?? 0)", "-c", h.configPath]).stdoutText
        XCTAssertTrue(show.contains("+49 30 1234567 / 030 1234567 (type national)"), show)
        XCTAssertTrue(show.contains("end cause:    cleared"), show)
        XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
    }

    func testWithheldNumber_isInNoFaxOrVoiceMail_andTheJournalSaysWithheld() async throws {
        let h = try GatewayHarness(.init(voicemail: Self.voicemail, numberLine: Self.berlin, pdfPageSize: "exact"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-clir")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try await h.startGateway()

        var fax = SimulatedFaxCall(from: "309876543", to: "100", document: source.sff, callingNumberRestricted: true)
        fax.callingTypeAndPlan = Self.national
        let faxResult = try await h.simulator.placeFaxCall(fax)
        XCTAssertTrue(faxResult.accepted)
        var voice = SimulatedVoiceCall(from: "305556667", to: "100", callingNumberRestricted: true, speech: Self.tone(seconds: 2),
                                       silenceAfterSpeech: 0.5, speed: 4)
        voice.callingTypeAndPlan = Self.national
        _ = try await h.simulator.placeVoiceCall(voice)

        let mails = try h.mail.fetch(user: h.mail.user, expect: 2, timeoutSeconds: 40)
        XCTAssertEqual(mails.count, 2)
        var contexts: [String] = []
        for raw in mails {
            let mail = try ParsedMail(raw, in: work)
            contexts.append(mail.headers["Message-Context"] ?? "")
            try assertNowhere(["9876543", "5556667"], raw: raw, mail: mail)
            XCTAssertTrue(mail.headers["Subject"]?.contains("unterdrückte Nummer") == true, "\(mail.headers)")
            if let pdf = mail.attachments.first(where: { $0.contentType == "application/pdf" }) {
                // pdf_page_size: exact keeps the fax's physical size (1728 dots at 204 dpi).
                XCTAssertEqual(try pdfPageSize(pdf.path).0, 1728.0 / 204 * 72, accuracy: 0.01)
            }
        }
        XCTAssertEqual(Set(contexts), ["fax-message", "voice-message"])

        let calls = try await h.waitForJournal { $0.count == 2 && $0.allSatisfy { $0.state == .mailed } }
        for call in calls {
            XCTAssertNil(call.callingNumber, "a withheld number is not even journaled")
            XCTAssertEqual(call.callingPresentation, .restricted)
        }
        let table = try runTool(GatewayHarness.faxgateBinary, ["journal", "-c", h.configPath]).stdoutText
        XCTAssertEqual(table.components(separatedBy: "withheld").count - 1, 2, table)
        XCTAssertFalse(table.contains("9876543") || table.contains("5556667"), table)
        XCTAssertFalse(h.gatewayLog().contains("9876543") || h.gatewayLog().contains("5556667"), "nor logged")
    }

    /// The daemon dies (SIGKILL) in the middle of a withheld fax call and of a withheld voice call; the next
    /// start mails what arrived — still without the number, because presentation lives in the call's row.
    func testWithheldNumber_staysWithheld_whenTheCallIsMailedAfterACrash() async throws {
        let h = try GatewayHarness(.init(voicemail: Self.voicemail, numberLine: Self.berlin))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-clir-crash")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try await h.startGateway()

        // Fax: paced like a real line, killed once a few blocks are in the spool.
        var fax = SimulatedFaxCall(from: "309876543", to: "100", document: source.sff, callingNumberRestricted: true, blockSize: 512)
        fax.callingTypeAndPlan = Self.national
        fax.blockInterval = .milliseconds(150)
        let faxCall = fax
        try await killDuringCall(h, startedBy: { try await $0.placeFaxCall(faxCall) }, minimumSpooled: 2048)
        try await h.startGateway()
        let faxMails = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 40, delete: true)
        XCTAssertEqual(faxMails.count, 1)
        let faxMail = try ParsedMail(faxMails[0], in: work)
        XCTAssertEqual(faxMail.headers["Message-Context"], "fax-message")
        XCTAssertTrue(faxMail.headers["Subject"]?.contains("unterdrückte Nummer") == true, "\(faxMail.headers)")
        try assertNowhere(["9876543"], raw: faxMails[0], mail: faxMail)
        var calls = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(calls.first?.endCause, .interrupted)
        XCTAssertEqual(calls.first?.outcome, .partial)

        // Voice: the recording runs in real time; killed after two seconds of it.
        var voice = SimulatedVoiceCall(from: "305556667", to: "100", callingNumberRestricted: true, speech: Self.tone(seconds: 15),
                                       speed: 1, maxCallSeconds: 60)
        voice.callingTypeAndPlan = Self.national
        let voiceCall = voice
        try await killDuringCall(h, startedBy: { try await $0.placeVoiceCall(voiceCall) }, minimumSpooled: 16000)
        try await h.startGateway()
        let voiceMails = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 40, delete: true)
        XCTAssertEqual(voiceMails.count, 1)
        let voiceMail = try ParsedMail(voiceMails[0], in: work)
        XCTAssertEqual(voiceMail.headers["Message-Context"], "voice-message")
        XCTAssertTrue(voiceMail.headers["Subject"]?.contains("unterdrückte Nummer") == true, "\(voiceMail.headers)")
        XCTAssertFalse(voiceMail.attachments.isEmpty, "the recording that arrived is mailed")
        try assertNowhere(["5556667"], raw: voiceMails[0], mail: voiceMail)
        calls = try await h.waitForJournal { $0.count == 2 && $0.allSatisfy { $0.state == .mailed } }
        XCTAssertEqual(calls.first?.kind, .voice)
        XCTAssertEqual(calls.first?.endCause, .interrupted)
        XCTAssertEqual(calls.first?.callingPresentation, .restricted)
        XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
    }

    // MARK: - Helpers

    /// Starts a call, waits until the gateway has spooled `minimumSpooled` bytes of it, then SIGKILLs the gateway.
    func killDuringCall<T: Sendable>(_ h: GatewayHarness, startedBy place: @escaping @Sendable (CapiSimulator) async throws -> T,
                                     minimumSpooled: Int) async throws {
        let simulator = h.simulator
        let call = Task { try await place(simulator) }
        let spooled = try await h.poll("spooled bytes", timeout: 30, read: { () -> [Int] in
            let receiving = try h.journal().filter { $0.state == .receiving }
            return receiving.compactMap { $0.spoolPath }.map {
                ((try? FileManager.default.attributesOfItem(atPath: $0)[.size]) as? NSNumber)?.intValue ?? 0
            }
        }) { sizes in sizes.contains { $0 >= minimumSpooled } }
        XCTAssertFalse(spooled.isEmpty)
        h.stopGateway(signal: SIGKILL)
        // The simulator's side of the call ends with the lost connection; nothing of it is needed here.
        call.cancel()
    }

    /// The needles appear nowhere: raw mail (headers, encoded parts), decoded headers and body, attachment names
    /// and attachment bytes (ASCII, and UTF-16 as PDF text strings hold non-ASCII titles).
    func assertNowhere(_ needles: [String], raw: [UInt8], mail: ParsedMail, file: StaticString = #filePath,
                       line: UInt = #line) throws {
        for needle in needles {
            let utf16 = Array(needle.utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            let utf16Hex = needle.utf16.map { String(format: "%04X", $0) }.joined()
            XCTAssertFalse(contains(raw, Array(needle.utf8)), "raw mail holds \(needle)", file: file, line: line)
            XCTAssertFalse(mail.rawHeaders.contains(needle), "headers hold \(needle)", file: file, line: line)
            XCTAssertFalse(mail.headers.values.contains { $0.contains(needle) }, "decoded headers hold \(needle)", file: file, line: line)
            XCTAssertFalse(mail.body.contains(needle), "body holds \(needle)", file: file, line: line)
            for a in mail.attachments {
                XCTAssertFalse(a.filename.contains(needle), "attachment name \(a.filename)", file: file, line: line)
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: a.path)))
                XCTAssertFalse(contains(bytes, Array(needle.utf8)), "\(a.filename) holds \(needle)", file: file, line: line)
                XCTAssertFalse(contains(bytes, utf16), "\(a.filename) holds \(needle) in UTF-16", file: file, line: line)
                XCTAssertFalse(contains(bytes, Array(utf16Hex.utf8)), "\(a.filename) holds \(needle) as UTF-16 hex", file: file, line: line)
            }
        }
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return true }
        }
        return false
    }

    /// Width and height in points of page 1, from pdfinfo.
    func pdfPageSize(_ path: String) throws -> (Double, Double) {
        let info = try runTool("pdfinfo", [path]).stdoutText
        let line = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("Page size:") })
        let numbers = line.split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(numbers.count, 2, String(line))
        return (numbers[0], numbers[1])
    }
}
