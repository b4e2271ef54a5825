import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import SQLiteStorage
import TestSupport
import XCTest

/// An order mail is decided once, whichever handle (a second node, the CLI's drop directory) tries: `insertJobs`
/// with an intake record that is no longer `fetched` in the storage creates nothing. Both plugins.
final class StorageDecisionConformanceTests: XCTestCase {
    static func checkDecidedOnce(_ a: any Storage, _ b: any Storage, spool: String,
                                 file: StaticString = #filePath, line: UInt = #line) async throws {
        try await a.migrate()
        let raw = spool + "/order.eml"
        try Data("From: a@praxis.example\r\n\r\nbody".utf8).write(to: URL(fileURLWithPath: raw))
        var intake = try await a.recordIntake(IntakeRecord(source: "faxin", uidValidity: 9, uid: 7, messageID: "<o@x>", rawPath: raw)).record
        let again = try await b.recordIntake(IntakeRecord(source: "faxin", uidValidity: 9, uid: 7, messageID: "<o@x>", rawPath: raw))
        XCTAssertFalse(again.isNew, "the second handle finds the message recorded", file: file, line: line)
        XCTAssertEqual(again.record.id, intake.id, file: file, line: line)
        intake.state = .accepted
        intake.decidedAt = Date()
        let sff = spool + "/order.sff"
        try Data("SFF".utf8).write(to: URL(fileURLWithPath: sff))
        let job = FaxJob(intakeID: intake.id, sender: "a@praxis.example", senderName: nil, extensionName: "Front", language: "de",
                         number: "+49301110009", dialString: "0301110009", subject: "s", pages: 1, fine: true, sffPath: sff,
                         requestMessageID: "<o@x>")
        let first = try await a.insertJobs([job], intake: intake, event: "queued by a")
        XCTAssertEqual(first.count, 1, file: file, line: line)
        do {
            _ = try await b.insertJobs([job], intake: intake, event: "queued by b")
            XCTFail("a decided mail made jobs a second time", file: file, line: line)
        } catch is JobStateConflict {
            XCTFail("expected the intake refusal, not a job conflict", file: file, line: line)
        } catch {
            XCTAssertTrue("\(error)".contains("not fetched"), "\(error)", file: file, line: line)
        }
        let jobs = try await b.recentJobs(limit: 10).filter { $0.intakeID == intake.id }
        XCTAssertEqual(jobs.count, 1, "one decision, one job", file: file, line: line)
        let accepted = try await b.intakes(in: [.accepted]).map(\.id)
        XCTAssertEqual(accepted, [intake.id], file: file, line: line)
    }

    func testSQLite_twoHandlesOnOneFile() async throws {
        let dir = try TemporaryDirectory("decide-once")
        let a = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await a.migrate()
        let b = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await Self.checkDecidedOnce(a, b, spool: dir.path)
    }

    func testPostgres_twoNodes() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let dir = try TemporaryDirectory("decide-once-pg")
        func node(_ id: String) -> PostgresStorage {
            PostgresStorage(connection: PostgresConnectionSettings(host: "127.0.0.1", port: server.port, database: db, user: "postgres",
                                                                   password: nil, tls: .disable),
                            node: id, spoolDirectory: dir.path, logger: Logger(label: "t"))
        }
        let a = node("n1"), b = node("n2")
        defer { a.close(); b.close() }
        try await Self.checkDecidedOnce(a, b, spool: dir.path)
    }
}
