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

/// The retry policy's modem half (issue 10): a pure function of the failure and the limits the attempt used.
final class ModemFallbackTests: XCTestCase {
    func failure(_ kind: T30Failure.Kind, at rate: Int? = nil) -> T30Failure {
        T30Failure(kind: kind, code: 1, text: "engine words", bitRate: rate)
    }

    func testTrainingFailure_stepsDownTheLadder_fromTheRateItFailedAt() {
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 14400), used: .best), ModemSettings(maxBitRate: 9600, ecm: true))
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 9600), used: ModemSettings(maxBitRate: 9600)),
                       ModemSettings(maxBitRate: 4800, ecm: true))
        // V.17 12000 and V.29 7200 sit between the rungs: the next rung below them.
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 12000), used: .best).maxBitRate, 9600)
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 7200), used: .best).maxBitRate, 4800)
        // Failed at the best rate without the rate known: the ladder's top is where it started.
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed), used: .best).maxBitRate, 9600)
        // Rate unknown, but the attempt was already limited: one below the limit.
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed), used: ModemSettings(maxBitRate: 9600)).maxBitRate, 4800)
        // The bottom rung cannot go lower, and it stays there.
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 4800), used: ModemSettings(maxBitRate: 4800)).maxBitRate, 4800)
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 2400), used: .best).maxBitRate, 4800)
    }

    func testLimitsNeverGoUpWithinAJob() {
        // A remote that reports a failure at a rate above our limit (it cannot, but the number is from the line)
        // does not lift the limit.
        let limited = ModemSettings(maxBitRate: 4800, ecm: false)
        XCTAssertEqual(ModemFallback.next(after: failure(.trainingFailed, at: 14400), used: limited), limited)
        XCTAssertEqual(ModemFallback.next(after: failure(.pageRefused, at: 14400), used: limited), limited)
        // ECM once off stays off, whatever follows.
        for kind in T30Failure.Kind.allCases {
            XCTAssertFalse(ModemFallback.next(after: failure(kind, at: 9600), used: ModemSettings(maxBitRate: 9600, ecm: false)).ecm, "\(kind)")
        }
    }

    func testRefusedPage_turnsECMOff_thenSlowsDown() {
        XCTAssertEqual(ModemFallback.next(after: failure(.pageRefused, at: 14400), used: .best), ModemSettings(maxBitRate: nil, ecm: false),
                       "GOfax.IP's disableECMafterretry: the rate stays, ECM goes")
        // Without ECM already, a refused page is a line that garbles at this rate: one rung lower.
        XCTAssertEqual(ModemFallback.next(after: failure(.pageRefused, at: 14400), used: ModemSettings(ecm: false)),
                       ModemSettings(maxBitRate: 9600, ecm: false))
    }

    func testOtherFailuresAndNoFailure_leaveTheLimits() {
        let used = ModemSettings(maxBitRate: 9600, ecm: true)
        for kind in [T30Failure.Kind.noResponse, .incompatible, .remoteDisconnected, .local, .other] {
            XCTAssertEqual(ModemFallback.next(after: failure(kind, at: 9600), used: used), used, "\(kind)")
        }
        XCTAssertEqual(ModemFallback.next(after: nil, used: used), used)
    }

    func testReasonSentences_perKind_bothLanguages_withTheRate() {
        let training = failure(.trainingFailed, at: 9600)
        XCTAssertEqual(training.reason(.outgoing, language: "en"), "The remote fax did not accept our signal — training failed at 9600 bit/s")
        XCTAssertEqual(training.reason(.outgoing, language: "de"), "Das Gegenfax hat unser Signal nicht angenommen — Training bei 9600 bit/s fehlgeschlagen")
        XCTAssertEqual(failure(.pageRefused, at: 14400).reason(.outgoing, language: "en"),
                       "The remote fax refused the page — poor transmission at 14400 bit/s")
        XCTAssertEqual(failure(.pageRefused).reason(.outgoing, language: "de"), "Das Gegenfax hat die Seite abgelehnt — schlechte Leitungsqualität")
        XCTAssertEqual(failure(.trainingFailed).reason(.outgoing, language: "en"), "The remote fax did not accept our signal — training failed")
        // Every kind has its own sentence in each language and direction, and none leaks the engine's words.
        for language in ["de", "en"] {
            for direction in [CallRecord.Direction.incoming, .outgoing] {
                let texts = T30Failure.Kind.allCases.map { failure($0, at: 4800).reason(direction, language: language) }
                XCTAssertEqual(Set(texts).count, texts.count, "\(language) \(direction): \(texts)")
                XCTAssertFalse(texts.contains { $0.contains("engine words") })
            }
        }
        XCTAssertNotEqual(failure(.pageRefused).reason(.incoming, language: "en"), failure(.pageRefused).reason(.outgoing, language: "en"),
                          "receiving, it is our side that refuses the page")
    }

    func testSendReportMail_tellsTheFailureInTheSendersLanguage_andTheEngineFacts() {
        var job = FaxJob(state: .failed, intakeID: nil, sender: "a@example.test", senderName: nil, extensionName: "Front", language: "de",
                         number: "+49301234567", dialString: "0301234567", subject: "Befund", pages: 2, fine: true, sffPath: "/x",
                         requestMessageID: nil)
        job.lastCause = SendOutcome.Cause.faxProtocolError.rawValue
        job.lastText = "Training failed at 9600 bit/s (spandsp)"
        job.t30Failure = T30Failure(kind: .trainingFailed, code: 7, text: "Training failed", bitRate: 9600)
        job.ecm = true; job.compression = .mmr; job.ecmRetransmittedFrames = 4; job.engine = .software
        let de = OutgoingMailText(language: "de").statusBody(.failed, job: job)
        XCTAssertTrue(de.contains("Faxübertragung gestört: Das Gegenfax hat unser Signal nicht angenommen — Training bei 9600 bit/s fehlgeschlagen"), de)
        XCTAssertFalse(de.contains("spandsp"), "the engine's English words stay out of a German mail")
        XCTAssertTrue(de.contains("MMR (T.6)"), de)
        XCTAssertTrue(de.contains("ECM-Wiederholungen"), de)
        job.language = "en"
        let en = OutgoingMailText(language: "en").statusBody(.failed, job: job)
        XCTAssertTrue(en.contains("fax transmission error: The remote fax did not accept our signal — training failed at 9600 bit/s"), en)
        // A controller call without engine facts keeps today's rows.
        var plain = job
        plain.ecm = nil; plain.compression = nil; plain.ecmRetransmittedFrames = nil; plain.t30Failure = nil
        XCTAssertFalse(OutgoingMailText(language: "en").statusBody(.failed, job: plain).contains("Compression"))
    }
}

/// A transport that answers each dial with the next typed outcome and records the modem limits it was given.
/// Past its script it answers busy (no fax session at all), which parks the job without touching its limits.
final class TypedFailureTransport: FaxSendingTransport {
    let name = "typed-failures"
    let script: Mutex<[T30Failure?]>
    let modems = Mutex<[ModemSettings]>([])
    init(_ script: [T30Failure?]) { self.script = Mutex(script) }
    var channels: Int { get async { 1 } }
    func run() async throws { try await gracefulShutdown() }
    func send(_ fax: OutgoingFax) async -> SendOutcome {
        modems.withLock { $0.append(fax.modem) }
        let next = script.withLock { $0.isEmpty ? nil : Optional($0.removeFirst()) }
        let now = Date()
        guard let failure = next else {
            return SendOutcome(cause: .busy, reason: 0x3491, reasonB3: 0, text: "busy", session: FaxSessionInfo(), pagesSent: 0,
                               dialedAt: now, connectedAt: nil, endedAt: Date())
        }
        let pages = failure == nil ? ((try? SFFReader.read(fax.sff))?.pages.count ?? 0) : 0
        let rate = fax.modem.maxBitRate ?? 14400
        let stats = (0..<pages).map { FaxPageStatistics(page: $0 + 1, bitRate: rate, compression: .mr, fine: fax.fine, ecm: fax.modem.ecm,
                                                       ecmRetransmittedFrames: fax.modem.ecm ? 1 : nil, badRows: fax.modem.ecm ? nil : 0) }
        let session = FaxSessionInfo(bitRate: failure?.bitRate ?? rate, fine: fax.fine, pages: pages, remoteStationID: "+49 30 999",
                                     ecm: fax.modem.ecm, engine: .software, compression: .mr,
                                     ecmRetransmittedFrames: fax.modem.ecm ? pages : nil, pageStatistics: stats, failure: failure)
        return SendOutcome(cause: failure == nil ? .success : .faxProtocolError, reason: 0x3490, reasonB3: failure == nil ? 0 : 0x3311,
                           text: failure?.text ?? "ok", session: session, pagesSent: pages, dialedAt: now, connectedAt: now, endedAt: Date())
    }
}

final class SendQueueModemFallbackTests: XCTestCase {
    func runQueue(_ storage: SQLiteStorage, _ transport: TypedFailureTransport, outbox: Outbox,
                  until condition: @escaping () async -> Bool) async throws {
        var retry = RetryConfig()
        retry.protocolErrorSeconds = 0
        retry.maxProtocolErrors = 5
        retry.busySeconds = 3600
        let queue = SendQueue(
            settings: .init(from: MailAddress("fax@example.test"), hostname: "gw.test", retry: retry, notifyEachRetry: false,
                            callingNumbers: ["Front": ("100", false)], stationIDs: ["Front": ("+49 30 1", "Test")]),
            storage: storage, transport: transport, outbox: outbox, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [queue], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(await condition()) { try await Task.sleep(for: .milliseconds(50)) }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    func testTypedFailures_lowerTheModemForTheNextTry_andTheLimitsSurviveARestart() async throws {
        let dir = try TemporaryDirectory("fallback")
        let dbPath = dir.path + "/db.sqlite"
        var storage: SQLiteStorage? = try SQLiteStorage(path: dbPath)
        try await storage!.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        let sff = dir.path + "/doc.sff"
        let page = FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * 100), width: 1728, height: 100, resolution: .fine)
        try Data(SFFWriter.write([page, page])).write(to: URL(fileURLWithPath: sff))
        let job = try await storage!.insertJobs([FaxJob(intakeID: nil, sender: "alice@example.test", senderName: "Alice", extensionName: "Front",
                                                        language: "en", number: "+49301234567", dialString: "0301234567", subject: "Befund",
                                                        pages: 2, fine: true, sffPath: sff, requestMessageID: nil)],
                                                intake: nil, event: "test").first!
        let id = try XCTUnwrap(job.id)

        // First run: training fails at 14400, then ECM cannot get the page across at 9600, then the line is busy
        // (which parks the job for an hour). The queue stops there.
        let first = TypedFailureTransport([
            T30Failure(kind: .trainingFailed, code: 7, text: "Training failed at 14400 bit/s", bitRate: 14400),
            T30Failure(kind: .pageRefused, code: 9, text: "ECM page not accepted", bitRate: 9600),
        ])
        try await runQueue(storage!, first, outbox: outbox) {
            let j = try? await storage!.job(id: id)
            return j?.tries == 3 && j?.state == .deferred
        }
        XCTAssertEqual(first.modems.withLock { $0 }, [.best, ModemSettings(maxBitRate: 9600, ecm: true), ModemSettings(maxBitRate: 9600, ecm: false)],
                       "the second try offers the next lower rate with ECM, the third the same rate without ECM")
        let afterFirstRow = try await storage!.job(id: id)
        var afterFirst = try XCTUnwrap(afterFirstRow)
        XCTAssertEqual(afterFirst.state, .deferred)
        XCTAssertEqual(afterFirst.nextModem, ModemSettings(maxBitRate: 9600, ecm: false), "a busy try changes no limit")
        XCTAssertEqual(afterFirst.protocolErrors, 2, "typed failures count as protocol errors")
        XCTAssertNil(afterFirst.t30Failure, "the failure follows the last try, which was busy")
        XCTAssertEqual(afterFirst.engine, .software, "what the last connected try reported stays")
        let events = try await storage!.jobEvents(jobID: id).map(\.text)
        XCTAssertTrue(events.contains { $0.contains("next try: at most 9600 bit/s, ECM on") }, "\(events)")
        XCTAssertTrue(events.contains { $0.contains("next try: at most 9600 bit/s, ECM off") }, "\(events)")
        // As the admin's "retry now" does: the next try is due at once.
        afterFirst.nextAttemptAt = Date()
        try await storage!.updateJob(afterFirst, expecting: .deferred, event: "retry now (test)")

        // A restart: a new storage handle on the same file, a new queue. The limits come from the row.
        storage = nil
        let reopened = try SQLiteStorage(path: dbPath)
        try await reopened.migrate()
        let second = TypedFailureTransport([nil])
        try await runQueue(reopened, second, outbox: outbox) { (try? await reopened.job(id: id))?.state == .done }
        XCTAssertEqual(second.modems.withLock { $0 }, [ModemSettings(maxBitRate: 9600, ecm: false)], "the fallback survived the restart")
        let doneRow = try await reopened.job(id: id)
        let done = try XCTUnwrap(doneRow)
        XCTAssertEqual(done.state, .done)
        XCTAssertNil(done.t30Failure, "the last attempt succeeded")
        XCTAssertEqual(done.nextModem, ModemSettings(maxBitRate: 9600, ecm: false), "never reset within the job")
        XCTAssertEqual(done.ecm, false)
        XCTAssertEqual(done.pageStatistics.map(\.bitRate), [9600, 9600])
        XCTAssertEqual(done.pageStatistics.map(\.badRows), [0, 0])
    }

    func testProtocolErrorCap_stillEndsTheJob() async throws {
        let dir = try TemporaryDirectory("fallback-cap")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        let sff = dir.path + "/doc.sff"
        let page = FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * 100), width: 1728, height: 100, resolution: .fine)
        try Data(SFFWriter.write([page])).write(to: URL(fileURLWithPath: sff))
        let job = try await storage.insertJobs([FaxJob(intakeID: nil, sender: "alice@example.test", senderName: nil, extensionName: "Front",
                                                       language: "de", number: "+49301234567", dialString: "0301234567", subject: "x",
                                                       pages: 1, fine: true, sffPath: sff, requestMessageID: nil)],
                                               intake: nil, event: "test").first!
        let training = T30Failure(kind: .trainingFailed, code: 7, text: "Training failed", bitRate: nil)
        let transport = TypedFailureTransport(Array(repeating: training, count: 10))
        try await runQueue(storage, transport, outbox: outbox) { (try? await storage.job(id: job.id!))?.state.isFinal == true }
        let failedRow = try await storage.job(id: job.id!)
        let failed = try XCTUnwrap(failedRow)
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.protocolErrors, 5, "max_protocol_errors ends it, as before")
        XCTAssertEqual(transport.modems.withLock { $0.map(\.maxBitRate) }, [nil, 9600, 4800, 4800, 4800])
        // The final status mail is queued (its text is checked in ModemFallbackTests).
        let outboxNow2 = await outbox.pending().contains { $0.id == "job-\(job.id!)-failed" }
        XCTAssertTrue(outboxNow2)
    }
}
