import FaxDocument
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import SQLiteStorage
import TestSupport
import XCTest

/// What a call's mail depends on lives in the call's row, so a pipeline started after a crash (a new actor, nothing
/// in memory) writes the same mail: withheld stays withheld, the number keeps its type, ECM is reported.
final class CallFactsAfterRestartTests: XCTestCase {
    let ext = Extension(name: "Front", numbers: [NumberPattern("100")!], recipients: ["front@example.test"], formats: [.pdf],
                        language: .en, stationID: "+49 30 1")

    func pipeline(_ dir: TemporaryDirectory, _ storage: SQLiteStorage, _ sender: RecordingSender) throws -> (Outbox, ReceptionPipeline) {
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: sender,
                                settings: .init(retryInitial: .milliseconds(100), retryMax: .milliseconds(200), giveUpAfter: .seconds(3600)),
                                logger: Logger(label: "test"))
        let pipeline = try ReceptionPipeline(
            settings: .init(spoolDirectory: dir.path, from: MailAddress("fax@example.test", displayName: "Fax"),
                            envelopeFrom: "fax@example.test", hostname: "gw.example.test",
                            line: LineConfig(countryCode: "49", areaCode: "30")),
            directory: ExtensionDirectory(extensions: [ext], catchAllName: nil), storage: storage, outbox: outbox,
            logger: Logger(label: "test"))
        return (outbox, pipeline)
    }

    func sff() -> [UInt8] {
        var bitmap = [UInt8](repeating: 0, count: 216 * 100)
        for y in 20..<60 { for x in 10..<100 { bitmap[y * 216 + x] = 0xFF } }
        return SFFWriter.write([FaxPage(bitmap: bitmap, width: 1728, height: 100, resolution: .fine)])
    }

    /// Runs a pipeline (with its outbox) until one mail is out; returns the mail.
    func runUntilMailed(_ dir: TemporaryDirectory, _ storage: SQLiteStorage, id: Int64) async throws -> String {
        let sender = RecordingSender()
        let (outbox, pipeline) = try pipeline(dir, storage, sender)
        await outbox.setResultHandler { envelope, delivered, detail in
            if let id = envelope.callID { await pipeline.mailResult(callID: id, delivered: delivered, detail: detail) }
        }
        let group = ServiceGroup(services: [outbox, pipeline], logger: Logger(label: "test"))
        let run = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(15)
        while sender.sent.withLock({ $0.count }) < 1 && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        await group.triggerGracefulShutdown()
        try await run.value
        let sent = sender.sent.withLock { $0 }
        XCTAssertEqual(sent.count, 1)
        // Unfolded: long header lines (Subject, attachment names) are folded at spaces.
        return String(decoding: sent.first?.message ?? [], as: UTF8.self).replacingOccurrences(of: "\r\n ", with: " ")
    }

    func testWithheldCaller_decidedBeforeACrash_isMailedWithoutTheNumberAfterRestart() async throws {
        let dir = try TemporaryDirectory("facts-restart")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        // Run 1: the call is decided and data arrives; the process dies before the call ends.
        let (_, first) = try pipeline(dir, storage, RecordingSender())
        let call = IncomingCall(handle: 0x101, controller: 1, service: .fax, called: PartyNumber(digits: "100"),
                                caller: PartyNumber(digits: "309876543", type: .national, presentation: .restricted))
        guard case .answerFax(let answer) = await first.decide(call) else { return XCTFail("not answered") }
        // A hostile station id: line breaks that would forge a body line, a bidi override, an escape.
        await first.faxConnected(receptionID: answer.receptionID, info: FaxSessionInfo(
            bitRate: 14400, fine: true, remoteStationID: "+49 30\r\nResult: ok\u{202E}\u{1B}[2J", ecm: true))
        answer.spool.append(sff())
        try answer.spool.finish()

        // Run 2: a new pipeline over the same database finds the call interrupted and mails it.
        let mail = try await runUntilMailed(dir, storage, id: answer.receptionID)
        XCTAssertFalse(mail.contains("9876543"), "a withheld number must not be mailed:\n\(mail)")
        XCTAssertTrue(mail.contains("withheld number"), mail)
        XCTAssertTrue(mail.contains("Error correction (ECM): yes"), "ECM from the row, not from memory:\n\(mail)")
        let stationLine = mail.components(separatedBy: "\r\n").first { $0.hasPrefix("Remote station id:") } ?? ""
        XCTAssertTrue(stationLine.contains("+49 30") && stationLine.contains("Result: ok"), "cleaned, not dropped: \(stationLine)")
        XCTAssertFalse(mail.contains("\u{1B}") || mail.contains("\u{202E}") || mail.contains("\nResult: ok"), mail)
        let record = try await storage.call(id: answer.receptionID)
        XCTAssertNil(record?.callingNumber, "the withheld digits are not journaled")
        XCTAssertEqual(record?.callingPresentation, .restricted)
        XCTAssertEqual(record?.callingNumberType, .national)
        XCTAssertEqual(record?.endCause, .interrupted)
        XCTAssertEqual(record?.outcome, .partial)
    }

    func testTypedCaller_isMailedInItsLineForm_afterRestart() async throws {
        let dir = try TemporaryDirectory("facts-typed")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let (_, first) = try pipeline(dir, storage, RecordingSender())
        let call = IncomingCall(handle: 0x101, controller: 1, service: .fax, called: PartyNumber(digits: "100", type: .subscriber),
                                caller: PartyNumber(digits: "1234567", type: .subscriber))
        guard case .answerFax(let answer) = await first.decide(call) else { return XCTFail("not answered") }
        answer.spool.append(sff())
        try answer.spool.finish()
        let mail = try await runUntilMailed(dir, storage, id: answer.receptionID)
        XCTAssertTrue(mail.contains("Subject: Incomplete fax from +49 30 1234567 / 030 1234567 to Front"), mail)
        XCTAssertTrue(mail.contains("+49 30 100 / 030 100 (Front)"), mail)
        XCTAssertTrue(mail.contains("fax-") && mail.contains("-+49301234567.pdf"), mail)
    }

    /// The typed columns survive a reopen of the database (no defaults made up on the way back).
    func testTypedColumnsRoundTrip() async throws {
        let dir = try TemporaryDirectory("facts-columns")
        var id: Int64 = 0
        do {
            let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
            try await storage.migrate()
            var record = CallRecord(state: .received, callingNumber: "49301234567", calledNumber: "1234100")
            record.callingNumberType = .international
            record.calledNumberType = .subscriber
            record.callingPresentation = .allowed
            record.ecm = false
            record.endCause = .lineLost
            id = try await storage.insertCall(record, event: "test").id!
        }
        let reopened = try SQLiteStorage(path: dir.path + "/db.sqlite", readOnly: true)
        let back = try await reopened.call(id: id)
        XCTAssertEqual(back?.callingNumberType, .international)
        XCTAssertEqual(back?.calledNumberType, .subscriber)
        XCTAssertEqual(back?.callingPresentation, .allowed)
        XCTAssertEqual(back?.ecm, false)
        XCTAssertEqual(back?.endCause, .lineLost)
        XCTAssertEqual(back?.caller, PartyNumber(digits: "49301234567", type: .international))
    }
}
