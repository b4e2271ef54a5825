import FaxgateCore
import Foundation
import Logging
@testable import PostgresStorage
import TestSupport
import XCTest

/// The storage contract (calls, documents, the intake ledger, refusal replies, engine details, voice recordings) on a
/// real PostgreSQL 15, plus what only a shared database adds: the order mail readable from another node, and a
/// database that cannot be reached fails as an error instead of hanging or looking empty.
final class PostgresConformanceTests: XCTestCase {
    private var server: PostgresServer!
    private var database = ""
    private var handles: [PostgresStorage] = []

    override func setUpWithError() throws {
        server = try PostgresServer.shared()
        database = try server.createDatabase("conf")
    }

    override func tearDown() {
        for h in handles { h.close() }
        handles = []
        server?.dropDatabase(database)
    }

    /// A handle on this test's database, like one node's (trusted loopback: TLS is not the point here).
    private func open(node: String = "n1", spool: String = NSTemporaryDirectory()) async throws -> PostgresStorage {
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = database; settings.user = "postgres"
        settings.tls = "disable"
        let storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: node, spoolDirectory: spool,
                                      logger: Logger(label: "pg-conformance"))
        handles.append(storage)
        try await storage.migrate()
        return storage
    }

    private func sql(_ text: String) throws -> String {
        try server.psql(text, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testKeepsTheContract() async throws {
        let storage = try await open()
        try await StorageConformanceTests.checkContract(storage)
        try await StorageConformanceTests.checkVoiceRecordingContract(storage)
        // A second node's handle sees the same rows.
        let other = try await open(node: "n2")
        let calls = try await other.recentCalls(limit: 10)
        XCTAssertEqual(calls.count, 3)
        XCTAssertEqual(try sql("SELECT count(*) FROM call"), "3")
    }

    func testKeepsTheEngineDetailContract() async throws {
        let storage = try await open()
        try await StorageConformanceTests.checkEngineDetailContract(storage)
        // Typed columns in the table itself, and a value outside the typed set is refused by the database.
        XCTAssertEqual(try sql("SELECT engine || '|' || coalesce(compression, '-') FROM call ORDER BY id DESC LIMIT 1"), "controller|-")
        XCTAssertThrowsError(try sql("UPDATE call SET t30FailureKind = 'made_up'"), "the kind column only takes known kinds")
    }

    /// Runs on its own (no jobs involved), so the ledger's bookkeeping is checked whatever the jobs code does.
    func testKeepsTheRefusalReplyContract() async throws {
        let storage = try await open()
        try await StorageConformanceTests.checkRefusalReplies(storage, file: #filePath, line: #line)
    }

    /// The node that decides an order mail need not be the one that fetched it: the message is in the database,
    /// byte for byte, after the fetching node's file is gone; the same message recorded again is the same row.
    func testIntakeMessageIsReadableFromAnotherNodeAfterTheFileIsGone() async throws {
        let dir = try TemporaryDirectory("pg-intake")
        let fetcher = try await open(node: "n1", spool: dir.path)
        let decider = try await open(node: "n2")
        // A stranger's mail: NUL, quotes, backslashes, a would-be SQL terminator, every byte value.
        let raw: [UInt8] = Array("From: x@evil.example\r\nSubject: '); DROP TABLE intake; --\\\r\n\r\n".utf8) + [0] + (0...255).map(UInt8.init)
        let path = dir.path + "/raw-1.eml"
        try Data(raw).write(to: URL(fileURLWithPath: path))
        let record = IntakeRecord(source: "faxout", uidValidity: 7, uid: 42, messageID: "<m1@evil.example>", rawPath: path)
        let (stored, isNew) = try await fetcher.recordIntake(record)
        XCTAssertTrue(isNew)
        try FileManager.default.removeItem(atPath: path)

        let found = try await decider.intake(messageID: "<m1@evil.example>")
        XCTAssertEqual(found?.id, stored.id)
        let message = try await decider.intakeMessage(try XCTUnwrap(found))
        XCTAssertEqual(message, raw)

        // Fetched again (another node, or after a crash before the IMAP move): the existing row, not a new one.
        let (again, againNew) = try await decider.recordIntake(IntakeRecord(source: "faxout", uidValidity: 7, uid: 42, messageID: "<m1@evil.example>",
                                                                             rawPath: "/nonexistent/raw"))
        XCTAssertFalse(againNew)
        XCTAssertEqual(again.id, stored.id)
        XCTAssertEqual(again.rawPath, path)
        XCTAssertEqual(try sql("SELECT count(*) FROM intake"), "1")
        let still = try await decider.intakeMessage(again)
        XCTAssertEqual(still, raw, "recording it again does not replace the stored message")
    }

    /// Documents are bytea: every byte value survives, and a second document of a kind replaces the first.
    func testDocumentsKeepEveryByteAndReplaceByKind() async throws {
        let storage = try await open()
        let call = try await storage.insertCall(CallRecord(state: .received, callingNumber: nil, calledNumber: "100"), event: "t")
        let id = try XCTUnwrap(call.id)
        let bytes = (0...255).map(UInt8.init) + [0, 0, 39, 92]
        try await storage.putDocument(StoredDocument(callID: id, kind: "pdf", filename: "a.pdf", bytes: [1]))
        try await storage.putDocument(StoredDocument(callID: id, kind: "pdf", filename: "b.pdf", bytes: bytes))
        try await storage.putDocument(StoredDocument(callID: id, kind: "tiff", filename: "b.tiff", bytes: [2]))
        let docs = try await storage.documents(callID: id)
        XCTAssertEqual(docs.map(\.filename), ["b.pdf", "b.tiff"])
        XCTAssertEqual(docs.first?.bytes, bytes)
        XCTAssertEqual(try sql("SELECT length(bytes) FROM document WHERE kind = 'pdf'"), String(bytes.count))
    }

    /// Nothing listens on the port: every operation fails with an error that says the database is unreachable
    /// (never an empty answer), instead of waiting for the pool's own retries to give up.
    func testUnreachableDatabaseFailsWithAClearError() async throws {
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = try FreePort.loopbackTCP(); settings.database = "faxgate"; settings.user = "postgres"
        settings.tls = "disable"
        let storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: "n1", spoolDirectory: NSTemporaryDirectory(),
                                      logger: Logger(label: "pg-unreachable"), operationTimeout: .seconds(2))
        handles.append(storage)
        do {
            try await storage.migrate()
            XCTFail("migrated a database nobody serves")
        } catch {
            XCTAssertTrue("\(error)".hasPrefix("database unreachable: "), "\(error)")
            XCTAssertTrue("\(error)".contains("127.0.0.1:\(settings.port)"), "\(error)")
        }
        do {
            let calls = try await storage.recentCalls(limit: 10)
            XCTFail("an unreachable database answered \(calls.count) calls")
        } catch {
            XCTAssertTrue(error is StorageError, "\(type(of: error))")
            XCTAssertTrue("\(error)".hasPrefix("database unreachable: recent calls"), "\(error)")
        }
    }

    /// A server error names the operation and the server's reason, and a failed transaction leaves nothing behind.
    func testFailedUpdateLeavesNoEvent() async throws {
        let storage = try await open()
        var ghost = CallRecord(state: .received, callingNumber: nil, calledNumber: "100")
        ghost.id = 424_242
        do {
            try await storage.updateCall(ghost, event: "x")
            XCTFail("updated a call that does not exist")
        } catch {
            XCTAssertTrue(error is StorageError, "\(type(of: error)): \(error)")
        }
        XCTAssertEqual(try sql("SELECT count(*) FROM callEvent"), "0")
    }
}
