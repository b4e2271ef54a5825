import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// The contract every storage plugin must keep. Each implementation runs the same body.
final class StorageConformanceTests: XCTestCase {
    func testSQLiteStorage_keepsTheContract() async throws {
        let dir = try TemporaryDirectory("storage")
        let path = dir.path + "/db.sqlite"
        let storage = try SQLiteStorage(path: path)
        try await Self.checkContract(storage)
        // A second handle (the CLI's, read-only) sees the same rows while the writer is open.
        let reader = try SQLiteStorage(path: path, readOnly: true)
        let calls = try await reader.recentCalls(limit: 10)
        XCTAssertEqual(calls.count, 2)
        XCTAssertEqual(try runTool("sqlite3", [path, "select count(*) from call"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "2")
    }

    static func checkContract(_ storage: any Storage, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await storage.migrate()
        try await storage.migrate()  // idempotent
        var record = CallRecord(state: .receiving, startedAt: Date(timeIntervalSince1970: 1_800_000_000),
                                callingNumber: "+49301234567", calledNumber: "100", extensionName: "Front")
        record = try await storage.insertCall(record, event: "answering")
        let id = try XCTUnwrap(record.id, file: file, line: line)
        record.state = .received
        record.pages = 3
        record.remoteStationID = "+49 30 7654321"
        record.fine = true
        record.reason = 0x3490
        record.endedAt = Date(timeIntervalSince1970: 1_800_000_042)
        try await storage.updateCall(record, event: "call ended")
        let loaded = try await storage.call(id: id)
        XCTAssertEqual(loaded, record, file: file, line: line)
        XCTAssertEqual(loaded?.durationSeconds, 42, file: file, line: line)
        let v1 = try await storage.events(callID: id)
        XCTAssertEqual(v1.map(\.text), ["answering", "call ended"], file: file, line: line)

        var rejected = CallRecord(state: .rejected, startedAt: Date(timeIntervalSince1970: 1_800_000_100), callingNumber: nil, calledNumber: "555")
        rejected.outcome = .rejected
        rejected = try await storage.insertCall(rejected, event: "rejected")
        let v2 = try await storage.recentCalls(limit: 10)
        XCTAssertEqual(v2.map(\.id), [rejected.id, id], file: file, line: line)
        let v3 = try await storage.calls(in: [.received])
        XCTAssertEqual(v3.map(\.id), [id], file: file, line: line)
        let v4 = try await storage.calls(in: [.receiving])
        XCTAssertEqual(v4.count, 0, file: file, line: line)

        let pdf = StoredDocument(callID: id, kind: "pdf", filename: "fax.pdf", bytes: Array("%PDF-1.4 test".utf8))
        try await storage.putDocument(pdf)
        let v5 = try await storage.documents(callID: id)
        XCTAssertEqual(v5, [pdf], file: file, line: line)

        var ghost = record
        ghost.id = 999_999
        do {
            try await storage.updateCall(ghost, event: "x")
            XCTFail("updating a call that does not exist must fail", file: file, line: line)
        } catch {}

        // Daily limits: counted per limit key (a domain shares one), canceled jobs not; a job without a key counts
        // under its lowercased sender.
        func job(_ sender: String, key: String?, state: FaxJob.State = .ready) -> FaxJob {
            var j = FaxJob(state: state, intakeID: nil, sender: sender, senderName: nil, extensionName: "Front", language: "de",
                           number: "+49301234567", dialString: "0301234567", subject: "s", pages: 2, fine: true, sffPath: "/nonexistent",
                           requestMessageID: nil)
            j.limitKey = key
            return j
        }
        let since = Date().addingTimeInterval(-60)
        let saved = try await storage.insertJobs([job("a@praxis.example", key: "@praxis.example"), job("b@praxis.example", key: "@praxis.example"),
                                                  job("c@praxis.example", key: "@praxis.example", state: .canceled),
                                                  job("Bob@Example.test", key: nil)], intake: nil, event: "test")
        XCTAssertEqual(saved.first?.limitKey, "@praxis.example", file: file, line: line)
        let domain = try await storage.usage(limitKey: "@praxis.example", since: since)
        XCTAssertEqual(domain.jobs, 2, file: file, line: line)
        XCTAssertEqual(domain.pages, 4, file: file, line: line)
        let bob = try await storage.usage(limitKey: "bob@example.test", since: since)
        XCTAssertEqual(bob.jobs, 1, file: file, line: line)
        try await checkRefusalReplies(storage, file: file, line: line)
    }

    /// What became of refusal replies: the per-recipient count and the admin digest's bookkeeping survive as rows.
    static func checkRefusalReplies(_ storage: any Storage, file: StaticString, line: UInt) async throws {
        func refused(_ uid: Int64, _ reply: IntakeRecord.ReplyDisposition?, to address: String, at: Date, alert: Bool = false) async throws -> IntakeRecord {
            var (r, _) = try await storage.recordIntake(IntakeRecord(source: "faxin", uidValidity: 9, uid: uid, messageID: nil, rawPath: "/x"))
            r.state = .rejected; r.reply = reply; r.replyAddress = address; r.decidedAt = at; r.adminAlert = alert
            try await storage.updateIntake(r)
            return r
        }
        let now = Date()
        _ = try await refused(101, .sent, to: "bob@example.test", at: now.addingTimeInterval(-7200))
        _ = try await refused(102, .sent, to: "bob@example.test", at: now.addingTimeInterval(-60))
        let quiet = try await refused(103, .suppressed, to: "mallory@evil.example", at: now)
        let limited = try await refused(104, .rateLimited, to: "bob@example.test", at: now)
        let alert = try await refused(105, nil, to: "eve@evil.example", at: now, alert: true)
        let sent = try await storage.repliesSent(to: "Bob@Example.test", since: now.addingTimeInterval(-3600))
        XCTAssertEqual(sent, 1, "sent ones within the hour", file: file, line: line)
        let pending = try await storage.undigestedRefusals().map(\.id)
        XCTAssertEqual(pending, [quiet.id, limited.id, alert.id], file: file, line: line)
        let before = try await storage.digestSent("admin-digest-1")
        XCTAssertFalse(before, file: file, line: line)
        try await storage.markDigested([quiet.id!, limited.id!], digestID: "admin-digest-1")
        let after = try await storage.digestSent("admin-digest-1")
        XCTAssertTrue(after, file: file, line: line)
        let left = try await storage.undigestedRefusals().map(\.id)
        XCTAssertEqual(left, [alert.id], file: file, line: line)
        let listed = try await storage.recentIntakes(limit: 2)
        XCTAssertEqual(listed.map(\.id), [alert.id, limited.id], "newest first", file: file, line: line)
        XCTAssertEqual(listed.last?.reply, .rateLimited, file: file, line: line)
        XCTAssertEqual(listed.first?.adminAlert, true, file: file, line: line)
    }
}
