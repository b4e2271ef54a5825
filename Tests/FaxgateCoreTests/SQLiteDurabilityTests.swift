import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// Issue 8, point 11: a commit must be on disk before the gateway acts outside the database.
final class SQLiteDurabilityTests: XCTestCase {
    func testWriterConnection_runsWALWithSynchronousFull_onARealFile() async throws {
        let dir = try TemporaryDirectory("sqlite-sync")
        let path = dir.path + "/faxgate.sqlite"
        let storage = try SQLiteStorage(path: path)
        try await storage.migrate()
        // 2 = FULL: the WAL is synced on every commit. GRDB's WAL default is NORMAL (1), which may lose the
        // last commits on a power cut after we already moved a mail, handed one to SMTP, or dialled.
        let mode = try await storage.synchronousMode()
        XCTAssertEqual(mode, 2)
        // Still WAL, so the CLI reads while serve writes.
        XCTAssertEqual(try runTool("sqlite3", [path, "PRAGMA journal_mode"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "wal")
        // And it stays FULL after real writes (the pool keeps one writer connection).
        _ = try await storage.insertCall(CallRecord(state: .receiving, callingNumber: nil, calledNumber: "100"), event: "test")
        let after = try await storage.synchronousMode()
        XCTAssertEqual(after, 2)
    }
}
