import FaxDocument
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import SQLiteStorage
import Synchronization
import TestSupport
import XCTest

/// Records what would go to the SMTP server; fails the first `failures` attempts.
final class RecordingSender: MailSender {
    let sent = Mutex<[(from: String, to: [String], message: [UInt8])]>([])
    let attempts = Mutex(0)
    let failures: Int
    let transient: Bool
    init(failures: Int = 0, transient: Bool = true) { self.failures = failures; self.transient = transient }
    func send(envelopeFrom: String, recipients: [String], message: [UInt8]) async throws(MailSendFailure) {
        let n = attempts.withLock { $0 += 1; return $0 }
        if n <= failures { throw MailSendFailure(isTransient: transient, description: "server said no (\(n))") }
        sent.withLock { $0.append((envelopeFrom, recipients, message)) }
    }
}

final class ReceptionPipelineTests: XCTestCase {
    let ext = Extension(name: "Front", numbers: [NumberPattern("100")!], recipients: ["front@example.test"], formats: [.pdf],
                        language: .en, stationID: "+49 30 1")

    func makeParts(_ dir: TemporaryDirectory, sender: RecordingSender) throws -> (SQLiteStorage, Outbox, ReceptionPipeline) {
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: sender,
                                settings: .init(retryInitial: .milliseconds(100), retryMax: .milliseconds(200), giveUpAfter: .seconds(3600)),
                                logger: Logger(label: "test"))
        let pipeline = try ReceptionPipeline(
            settings: .init(spoolDirectory: dir.path, from: MailAddress("fax@example.test", displayName: "Fax"),
                            envelopeFrom: "fax@example.test", hostname: "gw.example.test"),
            directory: ExtensionDirectory(extensions: [ext], catchAllName: nil), storage: storage, outbox: outbox,
            logger: Logger(label: "test"))
        return (storage, outbox, pipeline)
    }

    /// Two white pages with a black bar each, encoded by our SFF writer.
    func sampleSFF() -> [UInt8] {
        let width = 1728, height = 200, rowBytes = width / 8
        let pages = (0..<2).map { p -> FaxPage in
            var bitmap = [UInt8](repeating: 0, count: rowBytes * height)
            for y in (50 + p * 20)..<(80 + p * 20) { for x in 20..<100 { bitmap[y * rowBytes + x] = 0xFF } }
            return FaxPage(bitmap: bitmap, width: width, height: height, resolution: .fine)
        }
        return SFFWriter.write(pages)
    }

    func testInterruptedReception_isProcessedOnNextStart_andMailedOnce() async throws {
        let dir = try TemporaryDirectory("pipeline")
        let sender = RecordingSender()
        let (storage, outbox, pipeline) = try makeParts(dir, sender: sender)
        try await storage.migrate()
        // A previous run crashed mid-call: the row says 'receiving', the spool has what arrived.
        var record = CallRecord(state: .receiving, callingNumber: "+49301112223", calledNumber: "100", extensionName: "Front")
        record = try await storage.insertCall(record, event: "answering")
        let spool = dir.path + "/incoming/\(record.id!).sff"
        try Data(sampleSFF()).write(to: URL(fileURLWithPath: spool))
        record.spoolPath = spool
        try await storage.updateCall(record, event: "spooling")

        await outbox.setResultHandler { envelope, delivered, detail in
            if let id = envelope.callID { await pipeline.mailResult(callID: id, delivered: delivered, detail: detail) }
        }
        let group = ServiceGroup(services: [outbox, pipeline], logger: Logger(label: "test"))
        let run = Task { try await group.run() }
        try await waitUntil { sender.sent.withLock { $0.count } == 1 }
        try await waitUntil { (try? await storage.call(id: record.id!))?.state == .mailed }
        await group.triggerGracefulShutdown()
        try await run.value

        let call = try await storage.call(id: record.id!)!
        XCTAssertEqual(call.outcome, .partial, "an interrupted call is never reported complete")
        XCTAssertEqual(call.pages, 2)
        let message = String(decoding: sender.sent.withLock { $0[0].message }, as: UTF8.self)
        XCTAssertTrue(message.contains("Incomplete fax from +49301112223 to Front"), message.prefix(800).description)
        XCTAssertTrue(message.contains("application/pdf"))
        XCTAssertEqual(sender.sent.withLock { $0[0].to }, ["front@example.test"])
        let documents = try await storage.documents(callID: record.id!)
        XCTAssertEqual(documents.map(\.kind), ["pdf"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool), "the received document stays until retention removes it")
        XCTAssertEqual(sender.sent.withLock { $0.count }, 1)
    }

    func testOutbox_retriesTransientFailures_thenDeliversAndClears() async throws {
        let dir = try TemporaryDirectory("outbox")
        let sender = RecordingSender(failures: 2)
        let (_, outbox, _) = try makeParts(dir, sender: sender)
        let results = Mutex<[Bool]>([])
        await outbox.setResultHandler { _, delivered, _ in results.withLock { $0.append(delivered) } }
        _ = try await outbox.enqueue(message: Array("Subject: x\r\n\r\nbody\r\n".utf8), envelopeFrom: "a@x.test", recipients: ["b@x.test"], callID: nil)
        let outboxNow8 = await outbox.pending().count
        XCTAssertEqual(outboxNow8, 1, "queued durably before any attempt")
        let group = ServiceGroup(services: [outbox], logger: Logger(label: "test"))
        let run = Task { try await group.run() }
        try await waitUntil { results.withLock { $0 } == [true] }
        await group.triggerGracefulShutdown()
        try await run.value
        XCTAssertEqual(sender.attempts.withLock { $0 }, 3)
        let outboxNow9 = await outbox.pending().count
        XCTAssertEqual(outboxNow9, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/outbox").filter { $0 != "failed" && $0 != "sent" }, [])
    }

    func testOutbox_permanentFailure_isKeptInFailedNotDeleted() async throws {
        let dir = try TemporaryDirectory("outbox")
        let sender = RecordingSender(failures: 100, transient: false)
        let (_, outbox, _) = try makeParts(dir, sender: sender)
        let results = Mutex<[String]>([])
        await outbox.setResultHandler { _, delivered, detail in results.withLock { $0.append("\(delivered) \(detail)") } }
        _ = try await outbox.enqueue(message: Array("Subject: x\r\n\r\nbody\r\n".utf8), envelopeFrom: "a@x.test", recipients: ["b@x.test"], callID: 7)
        let group = ServiceGroup(services: [outbox], logger: Logger(label: "test"))
        let run = Task { try await group.run() }
        try await waitUntil { results.withLock { $0.count } == 1 }
        await group.triggerGracefulShutdown()
        try await run.value
        XCTAssertEqual(results.withLock { $0 }, ["false server said no (1)"])
        let failed = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/outbox/failed").sorted()
        XCTAssertEqual(failed.count, 2)
        XCTAssertTrue(failed.contains { $0.hasSuffix(".eml") })
    }

    func testReceptionMail_germanTemplate_namesEveryFact() {
        let facts = ReceptionMail.Facts(
            callID: 42, callingNumber: "+49301112223", calledNumber: "100", extensionName: "Empfang", remoteStationID: "+49 30 1112223",
            pages: 3, fine: true, bitRate: 14400, ecm: true, startedAt: Date(timeIntervalSince1970: 1_800_000_000), duration: 75,
            outcome: .complete, reasonText: nil, problems: [])
        let mail = ReceptionMail(language: .de, timeZone: TimeZone(identifier: "Europe/Berlin")!)
        XCTAssertEqual(mail.subject(facts), "Fax von +49301112223 an Empfang (3 Seiten)")
        let body = mail.body(facts)
        for expected in ["Absender (Rufnummer):", "+49 30 1112223", "100 (Empfang)", "fein (204 × 196 dpi)", "14400 bit/s",
                         "Fehlerkorrektur (ECM):   ja", "1 min 15 s", "15.01.2027 09:00:00", "vollständig empfangen", "#42"] {
            XCTAssertTrue(body.contains(expected), "missing \(expected) in\n\(body)")
        }
    }

    func waitUntil(timeout: TimeInterval = 15, _ condition: @escaping () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("condition not met within \(timeout) s")
        throw CancellationError()
    }
}
