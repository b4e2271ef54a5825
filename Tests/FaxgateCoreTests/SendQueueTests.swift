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

/// Plays back outcomes per number and records every call; used to test the queue's rules, not CAPI.
final class ScriptedTransport: FaxSendingTransport {
    let name = "scripted"
    let script: Mutex<[String: [SendOutcome.Cause]]>
    let calls = Mutex<[(number: String, start: Date, end: Date)]>([])
    let concurrent = Mutex((now: 0, max: 0))
    let lines: Int
    init(lines: Int, script: [String: [SendOutcome.Cause]]) { self.lines = lines; self.script = Mutex(script) }
    var channels: Int { get async { lines } }
    func run() async throws { try await gracefulShutdown() }
    func send(_ fax: OutgoingFax) async -> SendOutcome {
        concurrent.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
        let start = Date()
        try? await Task.sleep(for: .milliseconds(150))
        let cause = script.withLock { s -> SendOutcome.Cause in
            guard var list = s[fax.dialString.digits], !list.isEmpty else { return .success }
            let c = list.removeFirst()
            s[fax.dialString.digits] = list
            return c
        }
        concurrent.withLock { $0.now -= 1 }
        calls.withLock { $0.append((fax.dialString.digits, start, Date())) }
        let pages = cause == .success ? ((try? SFFReader.read(fax.sff))?.pages.count ?? 0) : 0
        return SendOutcome(cause: cause, reason: cause == .busy ? 0x3491 : 0x3490, reasonB3: 0, text: "scripted \(cause.rawValue)",
                           session: FaxSessionInfo(bitRate: 14400, fine: fax.fine, pages: pages, remoteStationID: "+49 30 999"),
                           pagesSent: pages, dialedAt: start, connectedAt: start, endedAt: Date())
    }
}

final class SendQueueTests: XCTestCase {
    func makeJob(_ storage: SQLiteStorage, dir: TemporaryDirectory, dial: String, sender: String = "alice@example.test") async throws -> FaxJob {
        let sff = dir.path + "/doc.sff"
        if !FileManager.default.fileExists(atPath: sff) {
            let page = FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * 100), width: 1728, height: 100, resolution: .fine)
            try Data(SFFWriter.write([page, page])).write(to: URL(fileURLWithPath: sff))
        }
        let job = FaxJob(intakeID: nil, sender: sender, senderName: "Alice", extensionName: "Front", language: "en",
                         number: "+49" + dial.dropFirst(), dialString: dial, subject: "Befund", pages: 2, fine: true, sffPath: sff,
                         requestMessageID: "<req@example.test>")
        return try await storage.insertJobs([job], intake: nil, event: "test").first!
    }

    func run(_ storage: SQLiteStorage, transport: ScriptedTransport, outbox: Outbox, retry: RetryConfig,
             until condition: @escaping () async -> Bool) async throws {
        let queue = SendQueue(
            settings: .init(from: MailAddress("fax@example.test"), hostname: "gw.test", retry: retry, notifyEachRetry: false,
                            callingNumbers: ["Front": ("100", false)], stationIDs: ["Front": ("+49 30 1", "Test")]),
            storage: storage, transport: transport, outbox: outbox, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [queue], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(await condition()) { try await Task.sleep(for: .milliseconds(100)) }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    func testBusyTwiceThenSuccess_retriesAfterTheBusyDelay_andReportsOnce() async throws {
        let dir = try TemporaryDirectory("queue")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        let transport = ScriptedTransport(lines: 2, script: ["0301234567": [.busy, .busy, .success]])
        var retry = RetryConfig()
        retry.busySeconds = 1
        let job = try await makeJob(storage, dir: dir, dial: "0301234567")
        try await run(storage, transport: transport, outbox: outbox, retry: retry) {
            (try? await storage.job(id: job.id!))?.state == .done
        }
        let done = try await storage.job(id: job.id!)!
        XCTAssertEqual(done.state, .done)
        XCTAssertEqual(done.tries, 3)
        XCTAssertEqual(done.pagesSent, 2)
        XCTAssertEqual(done.remoteStationID, "+49 30 999")
        let calls = transport.calls.withLock { $0 }
        XCTAssertEqual(calls.count, 3)
        XCTAssertGreaterThanOrEqual(calls[1].start.timeIntervalSince(calls[0].end), 0.9, "busy delay honoured")
        // One status mail (no per-retry notices by default), with the send report attached.
        let pending = await outbox.pending()
        XCTAssertEqual(pending.map(\.id), ["job-\(job.id!)-done"])
        XCTAssertEqual(pending.first?.envelopeFrom, "", "automatic mail goes out with an empty envelope sender")
        let eml = String(decoding: try Data(contentsOf: URL(fileURLWithPath: outbox.directory + "/job-\(job.id!)-done.eml")), as: UTF8.self)
        XCTAssertTrue(eml.contains("Subject: Fax to +49301234567 sent (2 pages)"), String(eml.prefix(600)))
        XCTAssertTrue(eml.contains("In-Reply-To: <req@example.test>"))
        XCTAssertTrue(eml.contains("application/pdf"), "send report attached")
        let events = try await storage.jobEvents(jobID: job.id!).map(\.text)
        XCTAssertEqual(events.filter { $0.hasPrefix("busy") }.count, 2, "\(events)")
    }

    func testInvalidNumber_failsAtOnce_andSameDestinationIsNeverDialledTwiceAtOnce() async throws {
        let dir = try TemporaryDirectory("queue")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        let transport = ScriptedTransport(lines: 4, script: ["0309999999": [.invalidNumber]])
        let bad = try await makeJob(storage, dir: dir, dial: "0309999999")
        let same1 = try await makeJob(storage, dir: dir, dial: "0301111111")
        let same2 = try await makeJob(storage, dir: dir, dial: "0301111111")
        let other = try await makeJob(storage, dir: dir, dial: "0302222222")
        try await run(storage, transport: transport, outbox: outbox, retry: RetryConfig()) {
            let states = await [bad, same1, same2, other].asyncMap { (try? await storage.job(id: $0.id!))?.state }
            return states.allSatisfy { $0?.isFinal == true }
        }
        let failed = try await storage.job(id: bad.id!)!
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.tries, 1, "an invalid number is not retried")
        let calls = transport.calls.withLock { $0 }.filter { $0.number == "0301111111" }
        XCTAssertEqual(calls.count, 2)
        XCTAssertTrue(calls[0].end <= calls[1].start || calls[1].end <= calls[0].start, "one call per destination at a time")
        XCTAssertGreaterThanOrEqual(transport.concurrent.withLock { $0.max }, 2, "different destinations go out in parallel")
        let outboxNow1 = await outbox.pending().contains { $0.id == "job-\(bad.id!)-failed" }
        XCTAssertTrue(outboxNow1)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var out: [T] = []
        for e in self { out.append(await transform(e)) }
        return out
    }
}
