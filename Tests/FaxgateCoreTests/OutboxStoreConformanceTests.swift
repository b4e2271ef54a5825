import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import ServiceLifecycle
import Synchronization
import TestSupport
import XCTest

/// Issue 11: "outbox mails go out exactly once" — the same contract on the per-node spool directory and on the
/// table every node shares, plus what only a shared store can do: two nodes, one mail; a dead node's claim ends.
final class OutboxStoreConformanceTests: XCTestCase {
    static let settings = Outbox.Settings(retryInitial: .milliseconds(100), retryMax: .milliseconds(200), giveUpAfter: .seconds(3600))

    static func message(_ id: String) -> [UInt8] { Array("Subject: \(id)\r\n\r\nbody\r\n".utf8) }

    static func envelope(_ id: String) -> Outbox.Envelope {
        Outbox.Envelope(id: id, envelopeFrom: "", recipients: ["b@x.test"], callID: nil, queuedAt: Date(), attempts: 0,
                        nextAttemptAt: Date(), lastError: nil)
    }

    /// Runs the outboxes until `condition` holds (at most `timeout`), plus a moment in which a second send would show.
    static func run(_ outboxes: [Outbox], timeout: TimeInterval = 20, until condition: @escaping () async -> Bool) async throws {
        let group = ServiceGroup(services: outboxes, logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(timeout)
        while !(await condition()) && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))  // room for a second send
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// The contract every store keeps. `make` gives a fresh handle on the same store each call.
    static func checkContract(make: () async throws -> any OutboxStore, file: StaticString = #filePath, line: UInt = #line) async throws {
        let store = try await make()
        // Idempotent add: a derived id is stored once.
        let added = try await store.add(envelope("job-1-done"), message: message("job-1-done"))
        XCTAssertTrue(added, file: file, line: line)
        let again = try await store.add(envelope("job-1-done"), message: message("other"))
        XCTAssertFalse(again, "the same id is not queued twice", file: file, line: line)
        let known = try await store.isKnown("job-1-done")
        XCTAssertTrue(known, file: file, line: line)
        let unknown = try await store.isKnown("job-2-done")
        XCTAssertFalse(unknown, file: file, line: line)
        let listed = try await store.pending().map(\.id)
        XCTAssertEqual(listed, ["job-1-done"], file: file, line: line)

        // Crash right after the server's 250: the sent record is there, the mail never goes out again.
        guard case .message(_, let bytes) = try await store.take(envelope("job-1-done")) else {
            return XCTFail("a queued mail can be taken", file: file, line: line)
        }
        XCTAssertEqual(bytes, message("job-1-done"), "the first message, not the repeated add's", file: file, line: line)
        try await store.markSent(envelope("job-1-done"))
        let sender = RecordingSender()
        let results = Mutex<[Bool]>([])
        let outbox = Outbox(store: try await make(), directory: "unused", sender: sender, settings: settings, logger: Logger(label: "t"))
        await outbox.setResultHandler { _, delivered, _ in results.withLock { $0.append(delivered) } }
        try await run([outbox]) { await outbox.pending().isEmpty }
        XCTAssertEqual(sender.attempts.withLock { $0 }, 0, "never handed to the server again", file: file, line: line)
        let sent = try await store.wasSent("job-1-done")
        XCTAssertTrue(sent, file: file, line: line)
        let afterSent = try await store.add(envelope("job-1-done"), message: message("job-1-done"))
        XCTAssertFalse(afterSent, "a sent id stays known", file: file, line: line)

        // Give-up: kept for the admin, never sent again, not queued again.
        let refusing = RecordingSender(failures: 100, transient: false)
        let failing = Outbox(store: try await make(), directory: "unused", sender: refusing, settings: settings, logger: Logger(label: "t"))
        _ = try await failing.enqueue(message: message("job-9-failed"), envelopeFrom: "", recipients: ["b@x.test"], callID: nil,
                                      id: "job-9-failed")
        try await run([failing]) { await failing.pending().isEmpty }
        try await run([failing], timeout: 1) { false }
        XCTAssertEqual(refusing.attempts.withLock { $0 }, 1, "one attempt, then kept as failed", file: file, line: line)
        let failed = try await store.failedCount()
        XCTAssertEqual(failed, 1, file: file, line: line)
        let requeued = try await store.add(envelope("job-9-failed"), message: message("job-9-failed"))
        XCTAssertFalse(requeued, "a given-up id stays known", file: file, line: line)

        // An ordinary mail goes out once.
        let normal = RecordingSender()
        let plain = Outbox(store: try await make(), directory: "unused", sender: normal, settings: settings, logger: Logger(label: "t"))
        _ = try await plain.enqueue(message: message("call-5"), envelopeFrom: "a@x.test", recipients: ["b@x.test"], callID: nil, id: "call-5")
        try await run([plain]) { normal.sent.withLock { $0.count } == 1 }
        XCTAssertEqual(normal.sent.withLock { $0.map(\.message) }, [message("call-5")], file: file, line: line)
    }

    func testFileStore() async throws {
        let dir = try TemporaryDirectory("outbox-store")
        try await Self.checkContract { try FileOutboxStore(directory: dir.path + "/outbox", logger: Logger(label: "t")) }
    }

    // MARK: PostgreSQL

    var server: PostgresServer!
    var db = ""
    var handles: [PostgresStorage] = []

    override func tearDown() async throws {
        handles.forEach { $0.close() }
        handles = []
        if !db.isEmpty { server.dropDatabase(db) }
    }

    func node(_ name: String) async throws -> PostgresStorage {
        if server == nil { server = try PostgresServer.shared(); db = try server.createDatabase() }
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = db; settings.user = "postgres"
        settings.tls = "disable"  // trusted loopback: TLS is not the point here
        var logger = Logger(label: "pgoutbox-\(name)")
        logger.logLevel = .warning
        let dir = try TemporaryDirectory("pgoutbox")
        let s = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: name, spoolDirectory: dir.path, logger: logger)
        handles.append(s)
        try await s.migrate()
        return s
    }

    func testPostgresStore() async throws {
        let storage = try await node("n1")
        try await Self.checkContract { storage.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "t")) }
    }

    /// Two nodes queue the same derived ids (both mail the reports missing at start) and run their outboxes at
    /// once: every mail reaches the server exactly once in total.
    func testTwoNodes_deliverEveryMailExactlyOnce() async throws {
        let a = try await node("n1"), b = try await node("n2")
        let senderA = RecordingSender(), senderB = RecordingSender()
        let outboxA = Outbox(store: a.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "a")), directory: "unused",
                             sender: senderA, settings: Self.settings, logger: Logger(label: "a"))
        let outboxB = Outbox(store: b.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "b")), directory: "unused",
                             sender: senderB, settings: Self.settings, logger: Logger(label: "b"))
        let ids = (1...12).map { "job-\($0)-done" }
        for id in ids {
            _ = try await outboxA.enqueue(message: Self.message(id), envelopeFrom: "", recipients: ["s@x.test"], callID: nil, id: id)
            _ = try await outboxB.enqueue(message: Self.message(id), envelopeFrom: "", recipients: ["s@x.test"], callID: nil, id: id)
        }
        let total = { senderA.sent.withLock { $0.count } + senderB.sent.withLock { $0.count } }
        try await Self.run([outboxA, outboxB]) { total() >= ids.count }
        let all = senderA.sent.withLock { $0.map(\.message) } + senderB.sent.withLock { $0.map(\.message) }
        XCTAssertEqual(all.map { String(decoding: $0, as: UTF8.self) }.sorted(),
                       ids.map { String(decoding: Self.message($0), as: UTF8.self) }.sorted(), "each mail once, none twice")
        let left = await outboxA.pending()
        XCTAssertEqual(left.count, 0)
    }

    /// A node took a mail for an attempt and died: nobody else sends it while its claim holds; after the claim
    /// ends the other node sends it, once.
    func testDeadNodesClaim_expires_andTheOtherNodeSendsIt() async throws {
        let a = try await node("n1"), b = try await node("n2")
        let storeA = a.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "a"))
        let storeB = b.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "b"))
        _ = try await storeA.add(Self.envelope("call-1"), message: Self.message("call-1"))
        guard case .message = try await storeA.take(Self.envelope("call-1")) else { return XCTFail("node 1 claims it") }
        guard case .heldElsewhere = try await storeB.take(Self.envelope("call-1")) else { return XCTFail("held by node 1") }

        // A short claim that really runs out: node 1 dies holding it.
        let shortA = a.sharedOutboxStore(lease: .seconds(1), logger: Logger(label: "a"))
        _ = try await shortA.add(Self.envelope("call-2"), message: Self.message("call-2"))
        guard case .message = try await shortA.take(Self.envelope("call-2")) else { return XCTFail("node 1 claims it") }
        let senderB = RecordingSender()
        let outboxB = Outbox(store: storeB, directory: "unused", sender: senderB, settings: Self.settings, logger: Logger(label: "b"))
        try await Self.run([outboxB]) { senderB.sent.withLock { $0.count } >= 1 }
        XCTAssertEqual(senderB.sent.withLock { $0.map(\.message) }, [Self.message("call-2")],
                       "the expired claim is sent by node 2; the one node 1 still holds is not")
        let sent = try await storeA.wasSent("call-2")
        XCTAssertTrue(sent)
        let stillHeld = try await storeB.isKnown("call-1")
        XCTAssertTrue(stillHeld)
    }

    /// Retention deletes a call's rows: its outbox rows (a failed mail keeps the fax bytes) go in the same statement.
    func testOutboxRowsGoWithTheirCall() async throws {
        let storage = try await node("n1")
        let call = try await storage.insertCall(CallRecord(state: .receiving, startedAt: Date(), callingNumber: "+49301234567",
                                                           calledNumber: "100", extensionName: "Front"), event: "answering")
        let store = storage.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "t"))
        var e = Self.envelope("call-\(call.id!)")
        e.callID = call.id
        _ = try await store.add(e, message: Self.message(e.id))
        e.failedAt = Date()
        let kept = await store.markFailed(e, meta: [:])
        XCTAssertTrue(kept)
        XCTAssertEqual(try server.psql("SELECT count(*) FROM outbox WHERE message IS NOT NULL", database: db).trimmingCharacters(in: .whitespacesAndNewlines), "1")
        _ = try server.psql("DELETE FROM call WHERE id = \(call.id!)", database: db)
        XCTAssertEqual(try server.psql("SELECT count(*) FROM outbox", database: db).trimmingCharacters(in: .whitespacesAndNewlines), "0")
        let failed = try await store.failedCount()
        XCTAssertEqual(failed, 0)
    }
}
