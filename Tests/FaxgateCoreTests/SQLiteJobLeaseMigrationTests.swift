import FaxgateCore
import Foundation
@testable import SQLiteStorage
import TestSupport
import XCTest

/// Migration v-job-lease-uncertain rebuilds the job table of an existing database (SQLite cannot alter a CHECK):
/// ids, the id sequence, events, indexes and the cascade from jobEvent must survive, and `uncertain` is allowed.
final class SQLiteJobLeaseMigrationTests: XCTestCase {
    func testRebuild_keepsIdsEventsIndexesAndForeignKeys_andAdmitsUncertain() async throws {
        let dir = try TemporaryDirectory("lease-migration")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        // The database as the release before issue 11 left it.
        try SQLiteStorage.migrator.migrate(storage.pool, upTo: "v-call-voice-recording-path")
        try await storage.pool.write { db in
            for n in 1...3 {
                try db.execute(sql: """
                    INSERT INTO job (state, createdAt, sendAt, nextAttemptAt, sender, extensionName, language, number, dialString,
                                     subject, pages, fine, sffPath, tries, protocolErrors, pagesSent)
                    VALUES (?, '2026-01-01 10:00:00.000', '2026-01-01 10:00:00.000', '2026-01-01 10:00:00.000', 'a@example.test',
                            'Front', 'de', ?, ?, 'old', 1, 1, '/x.sff', 1, 0, 0)
                    """, arguments: [n == 1 ? "active" : "done", "+4930100000\(n)", "030100000\(n)"])
                try db.execute(sql: "INSERT INTO jobEvent (jobID, at, text) VALUES (?, '2026-01-01 10:00:00.000', ?)", arguments: [n, "event \(n)"])
            }
            try db.execute(sql: "DELETE FROM job WHERE id = 3")  // its id must not come back
        }
        try await storage.migrate()

        let old = try await storage.job(id: 1)
        XCTAssertEqual(old?.state, .active)
        XCTAssertEqual(old?.number, "+49301000001")
        XCTAssertNil(old?.leaseOwner)
        let events = try await storage.jobEvents(jobID: 1).map(\.text)
        XCTAssertEqual(events, ["event 1"])
        let indexes = try await storage.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'job' AND sql IS NOT NULL")
        }
        XCTAssertTrue(Set(indexes).isSuperset(of: ["job_on_state", "job_on_sender", "job_on_limitKey_createdAt", "job_on_createdAt",
                                                   "job_on_extensionName_createdAt"]), "\(indexes)")

        // An active job from before leases has no owner: the node's restart makes it uncertain (the CHECK admits it).
        let expired = try await storage.expireLeases(now: Date(), node: "n1", event: "restart")
        XCTAssertEqual(expired.compactMap(\.id), [1])
        let uncertain = try await storage.job(id: 1)
        XCTAssertEqual(uncertain?.state, .uncertain)
        // The CHECK still refuses what is no state.
        do {
            try await storage.pool.write { db in try db.execute(sql: "UPDATE job SET state = 'bogus' WHERE id = 2") }
            XCTFail("the state CHECK was lost")
        } catch {}

        // Ids go on after the highest ever given (3 was deleted), and the cascade to jobEvent is still there.
        let new = try await storage.insertJobs([FaxJob(intakeID: nil, sender: "a@example.test", senderName: nil, extensionName: "Front",
                                                       language: "de", number: "+493010000009", dialString: "0301000009", subject: "new",
                                                       pages: 1, fine: true, sffPath: "/y.sff", requestMessageID: nil)],
                                               intake: nil, event: "queued")
        XCTAssertEqual(new.first?.id, 4)
        let orphans = try await storage.pool.write { db -> Int in
            try db.execute(sql: "DELETE FROM job WHERE id = 2")
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobEvent WHERE jobID = 2") ?? -1
        }
        XCTAssertEqual(orphans, 0, "ON DELETE CASCADE survived the rebuild")
        let fkProblems = try await storage.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pragma_foreign_key_check") ?? -1 }
        XCTAssertEqual(fkProblems, 0)
    }
}
