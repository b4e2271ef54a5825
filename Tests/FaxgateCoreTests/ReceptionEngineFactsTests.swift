import FaxDocument
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import SQLiteStorage
import TestSupport
import XCTest

/// What the fax engine reports about a reception goes into the call's row from typed values, and a reception
/// that ended with a typed T.30 failure after some pages still mails what arrived, telling why in words.
final class ReceptionEngineFactsTests: XCTestCase {
    func ext(_ language: Extension.Language) -> Extension {
        Extension(name: "Front", numbers: [NumberPattern("100")!], recipients: ["front@example.test"], formats: [.pdf],
                  language: language, stationID: "+49 30 1")
    }

    func page() -> FaxPage {
        var bitmap = [UInt8](repeating: 0, count: 216 * 100)
        for y in 20..<60 { for x in 10..<100 { bitmap[y * 216 + x] = 0xFF } }
        return FaxPage(bitmap: bitmap, width: 1728, height: 100, resolution: .fine)
    }

    /// The text body of a rendered mail, quoted-printable decoded (the body is UTF-8 with dashes and umlauts).
    func textBody(_ message: [UInt8]) -> String {
        let raw = String(decoding: message, as: UTF8.self)
        guard let start = raw.range(of: "Content-Transfer-Encoding: quoted-printable\r\n\r\n") else { return raw }
        let qp = raw[start.upperBound...].components(separatedBy: "\r\n--").first ?? ""
        var bytes: [UInt8] = []
        let chars = Array(qp.replacingOccurrences(of: "=\r\n", with: "").utf8)
        var i = 0
        while i < chars.count {
            if chars[i] == UInt8(ascii: "="), i + 2 < chars.count, let v = UInt8(String(decoding: chars[i + 1...i + 2], as: UTF8.self), radix: 16) {
                bytes.append(v); i += 3
            } else {
                bytes.append(chars[i]); i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func receive(language: Extension.Language) async throws -> (mail: [UInt8], record: CallRecord?) {
        let dir = try TemporaryDirectory("engine-facts")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let sender = RecordingSender()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: sender,
                                settings: .init(retryInitial: .milliseconds(100), retryMax: .milliseconds(200), giveUpAfter: .seconds(3600)),
                                logger: Logger(label: "test"))
        let pipeline = try ReceptionPipeline(
            settings: .init(spoolDirectory: dir.path, from: MailAddress("fax@example.test", displayName: "Fax"),
                            envelopeFrom: "fax@example.test", hostname: "gw.example.test", line: LineConfig(countryCode: "49", areaCode: "30")),
            directory: ExtensionDirectory(extensions: [ext(language)], catchAllName: nil), storage: storage, outbox: outbox,
            logger: Logger(label: "test"))
        await outbox.setResultHandler { envelope, delivered, detail in
            if let id = envelope.callID { await pipeline.mailResult(callID: id, delivered: delivered, detail: detail) }
        }

        // The whole call happens before the services start: a pipeline that starts while a call is in 'receiving'
        // takes it for one interrupted by a restart. The ended call is found in 'received' and mailed.
        let call = IncomingCall(handle: 0x101, controller: 1, service: .fax, called: PartyNumber(digits: "100"),
                                caller: PartyNumber(digits: "301234567", type: .national))
        guard case .answerFax(let answer) = await pipeline.decide(call) else {
            XCTFail("not answered")
            return ([], nil)
        }
        await pipeline.faxConnected(receptionID: answer.receptionID, info: FaxSessionInfo(
            bitRate: 9600, fine: true, remoteStationID: "+49 30 1234567", ecm: true, engine: .software, compression: .mmr))
        // One page arrived; the second was refused (ECM could not repair it) and the remote gave up.
        answer.spool.append(SFFWriter.write([page()]))
        try answer.spool.finish()
        let stats = [FaxPageStatistics(page: 1, bitRate: 9600, compression: .mmr, fine: true, ecm: true, ecmRetransmittedFrames: 4, badRows: 0)]
        await pipeline.callEnded(receptionID: answer.receptionID, end: CallEnd(
            reason: 0x3490, reasonB3: 0, text: "T.30 failure: ECM page not accepted",
            session: FaxSessionInfo(bitRate: 9600, fine: true, pages: 1, remoteStationID: "+49 30 1234567", ecm: true,
                                    engine: .software, compression: .mmr, ecmRetransmittedFrames: 4, pageStatistics: stats,
                                    failure: T30Failure(kind: .pageRefused, code: 41, text: "ECM page not accepted", bitRate: 9600))))

        let group = ServiceGroup(services: [outbox, pipeline], logger: Logger(label: "test"))
        let run = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(15)
        while sender.sent.withLock({ $0.count }) < 1 && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        await group.triggerGracefulShutdown()
        try await run.value
        let record = try await storage.call(id: answer.receptionID)
        return (sender.sent.withLock { $0.first?.message } ?? [], record)
    }

    func testTypedFailureAfterAPage_isStored_andThePageIsMailedWithTheReason() async throws {
        let (mail, record) = try await receive(language: .en)
        let text = String(decoding: mail, as: UTF8.self).replacingOccurrences(of: "\r\n ", with: " ")
        XCTAssertTrue(text.contains("Subject: Incomplete fax from"), String(text.prefix(800)))
        XCTAssertTrue(text.contains("(1 page readable)"), String(text.prefix(800)))
        XCTAssertTrue(text.contains("application/pdf"), "what arrived is attached")
        let body = textBody(mail)
        XCTAssertTrue(body.contains("Result:") && body.contains("interrupted: A page arrived too damaged and was refused — poor transmission at 9600 bit/s"), body)
        XCTAssertTrue(body.contains("Compression:") && body.contains("MMR (T.6)"), body)
        // Split on any line end: "\r\n" is one Character in Swift.
        let resent = body.split(whereSeparator: \.isNewline).first { $0.hasPrefix("ECM frames resent:") }
        XCTAssertEqual(resent?.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(" 4"), true, body)
        XCTAssertFalse(body.contains("T.30 failure: ECM page not accepted"), "the transport's words are not the reason told")

        let r = try XCTUnwrap(record)
        XCTAssertEqual(r.outcome, .partial, "a typed failure is never complete, whatever the line codes say")
        XCTAssertEqual(r.engine, .software)
        XCTAssertEqual(r.compression, .mmr)
        XCTAssertEqual(r.ecm, true)
        XCTAssertEqual(r.ecmRetransmittedFrames, 4)
        XCTAssertEqual(r.t30Failure?.kind, .pageRefused)
        XCTAssertEqual(r.t30Failure?.bitRate, 9600)
        XCTAssertEqual(r.pageStatistics.map(\.page), [1])
        XCTAssertTrue([CallRecord.State.mailQueued, .mailed].contains(r.state), "\(r.state)")
    }

    func testGermanMail_saysTheReasonInGerman() async throws {
        let (mail, _) = try await receive(language: .de)
        let body = textBody(mail)
        XCTAssertTrue(body.contains("abgebrochen: Eine Seite kam zu beschädigt an und wurde abgelehnt — schlecht übertragen bei 9600 bit/s"), body)
        XCTAssertTrue(body.contains("ECM-Wiederholungen:"), body)
        XCTAssertFalse(body.contains("ECM page not accepted"), "no English engine words in a German mail")
    }
}
