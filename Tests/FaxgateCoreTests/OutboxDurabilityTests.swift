import FaxgateCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import XCTest

/// Issue 8, point 11: what a crash leaves in the outbox is finished, never sent twice, and never left unseen.
/// (The same through the real gateway, Postfix and Dovecot: EndToEndTests/PowerLossTests.)
final class OutboxDurabilityTests: XCTestCase {
    func makeOutbox(_ dir: TemporaryDirectory, _ sender: RecordingSender) throws -> Outbox {
        try Outbox(directory: dir.path + "/outbox", sender: sender,
                   settings: .init(retryInitial: .milliseconds(100), retryMax: .milliseconds(200), giveUpAfter: .seconds(3600)),
                   logger: Logger(label: "test"))
    }

    /// Runs the outbox until `condition` holds (or `timeout`), plus a moment in which a second send would show.
    func run(_ outbox: Outbox, timeout: TimeInterval = 10, until condition: @escaping () -> Bool) async throws {
        let group = ServiceGroup(services: [outbox], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))  // room for a second send
        await group.triggerGracefulShutdown()
        try await task.value
    }

    let message = Array("Subject: x\r\n\r\nbody\r\n".utf8)

    func testMailAcceptedBeforeACrash_isNotSentAgain_butFinishedAndReported() async throws {
        let dir = try TemporaryDirectory("outbox-crash")
        let sender = RecordingSender()
        let outbox = try makeOutbox(dir, sender)
        _ = try await outbox.enqueue(message: message, envelopeFrom: "a@x.test", recipients: ["b@x.test"], callID: 7, id: "call-7-abc")
        // What a crash right after the server's 250 leaves: the durable marker, and the queued copy still there.
        FileManager.default.createFile(atPath: dir.path + "/outbox/sent/call-7-abc", contents: nil)
        let results = Mutex<[Bool]>([])
        await outbox.setResultHandler { _, delivered, _ in results.withLock { $0.append(delivered) } }
        try await run(outbox) { results.withLock { !$0.isEmpty } }
        XCTAssertEqual(sender.attempts.withLock { $0 }, 0, "never handed to the server again")
        XCTAssertEqual(results.withLock { $0 }, [true], "the journal still learns that it was delivered")
        let outboxNow3 = await outbox.pending().count
        XCTAssertEqual(outboxNow3, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/outbox/call-7-abc.eml"))
    }

    func testSameDerivedID_afterDelivery_isNotQueuedAgain() async throws {
        let dir = try TemporaryDirectory("outbox-derived")
        let sender = RecordingSender()
        let outbox = try makeOutbox(dir, sender)
        _ = try await outbox.enqueue(message: message, envelopeFrom: "", recipients: ["b@x.test"], callID: nil, id: "job-3-done", jobID: 3)
        try await run(outbox) { sender.sent.withLock { $0.count } == 1 }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/outbox/sent/job-3-done"), "durable marker after the 250")
        // The step is repeated after a crash (the job's result was recorded, the mail queued again).
        _ = try await outbox.enqueue(message: message, envelopeFrom: "", recipients: ["b@x.test"], callID: nil, id: "job-3-done", jobID: 3)
        let outboxNow4 = await outbox.isKnown("job-3-done")
        XCTAssertTrue(outboxNow4)
        let outboxNow5 = await outbox.pending().count
        XCTAssertEqual(outboxNow5, 0)
        try await run(outbox, timeout: 1) { false }
        XCTAssertEqual(sender.sent.withLock { $0.count }, 1, "one status mail")
    }

    func testGivenUpMail_isNeverSentAgain_andTheResultCarriesTheJob() async throws {
        let dir = try TemporaryDirectory("outbox-failed")
        let sender = RecordingSender(failures: 100, transient: false)
        let outbox = try makeOutbox(dir, sender)
        let results = Mutex<[(Int64?, Bool)]>([])
        await outbox.setResultHandler { e, delivered, _ in results.withLock { $0.append((e.jobID, delivered)) } }
        _ = try await outbox.enqueue(message: message, envelopeFrom: "", recipients: ["b@x.test"], callID: nil, id: "job-9-failed", jobID: 9)
        try await run(outbox) { results.withLock { !$0.isEmpty } }
        try await run(outbox, timeout: 1) { false }
        XCTAssertEqual(sender.attempts.withLock { $0 }, 1, "one attempt, then outbox/failed")
        XCTAssertEqual(results.withLock { $0.map(\.0) }, [9])
        XCTAssertEqual(results.withLock { $0.map(\.1) }, [false])
        let data = try XCTUnwrap(FileManager.default.contents(atPath: dir.path + "/outbox/failed/job-9-failed.json"))
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("failedAt"), "the envelope says it was given up")
        // Queued again by a repeated step: still nothing new.
        _ = try await outbox.enqueue(message: message, envelopeFrom: "", recipients: ["b@x.test"], callID: nil, id: "job-9-failed", jobID: 9)
        let outboxNow6 = await outbox.pending().count
        XCTAssertEqual(outboxNow6, 0)
    }

    func testUnreadableEnvelope_isMovedToFailed_notLeftUnseen() async throws {
        let dir = try TemporaryDirectory("outbox-garbage")
        let sender = RecordingSender()
        let outbox = try makeOutbox(dir, sender)
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir.path + "/outbox/broken.json"))
        try Data(message).write(to: URL(fileURLWithPath: dir.path + "/outbox/broken.eml"))
        try await run(outbox) { FileManager.default.fileExists(atPath: dir.path + "/outbox/failed/broken.json") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/outbox/failed").sorted(), ["broken.eml", "broken.json"])
        XCTAssertEqual(sender.attempts.withLock { $0 }, 0)
    }

    func testRetentionKnowsTheSentMarkerOfACallsMail_andNoOtherCalls() throws {
        let dir = try TemporaryDirectory("outbox-markers")
        try FileManager.default.createDirectory(atPath: dir.path + "/outbox/sent", withIntermediateDirectories: true)
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let mine = ReceptionPipeline.outboxID(callID: 7, startedAt: started)
        let other = ReceptionPipeline.outboxID(callID: 70, startedAt: started)
        XCTAssertFalse(mine.dropFirst("call-7".count).contains(where: \.isNumber),
                       "the time part is letters, so log redaction does not take it for a phone number: \(mine)")
        for id in [mine, other] { FileManager.default.createFile(atPath: dir.path + "/outbox/sent/" + id, contents: nil) }
        let files = SpoolFiles.derivedFiles(callID: 7, spoolPath: nil, spoolDirectory: dir.path)
        XCTAssertEqual(files, [dir.path + "/outbox/sent/" + mine])
    }
}
