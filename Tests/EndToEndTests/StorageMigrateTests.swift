import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import SQLiteStorage
import TestSupport
import XCTest

/// `faxgate storage migrate`, the real binary: an SQLite installation filled through the Storage API is copied into
/// a fresh database of the real PostgreSQL cluster; then what the journal, the queue, the documents, the accounts and
/// the privacy tables answer is the same on both plugins. Also: stopped half-way it resumes without duplicates, a
/// second run copies nothing, and a target with rows from elsewhere is refused.
final class StorageMigrateTests: XCTestCase {
    var dir: TemporaryDirectory!
    var server: PostgresServer!
    var databases: [String] = []

    override func setUpWithError() throws {
        dir = try TemporaryDirectory("faxgate-migrate")
        server = try PostgresServer.shared()
    }

    override func tearDown() {
        for d in databases { server?.dropDatabase(d) }
    }

    /// An SQLite installation's configuration in `name`, and a PostgreSQL one for `database`.
    func configs(_ name: String, database: String) throws -> (source: String, target: String) {
        let base = """
            smtp:
              host: mail.example.com
              port: 587
              security: starttls
            mail:
              from: "Fax <fax@example.com>"
            capi:
              driver: rcapi
              host: 127.0.0.1
            extensions:
              - name: Empfang
                numbers: ["100"]
                email: [empfang@example.com]

            """
        try FileManager.default.createDirectory(atPath: dir.path + "/\(name)/spool", withIntermediateDirectories: true)
        let source = dir.path + "/\(name)/faxgate.yaml"
        try ("spool_directory: \(dir.path)/\(name)/spool\n" + base).write(toFile: source, atomically: true, encoding: .utf8)
        let target = dir.path + "/\(name)/target.yaml"
        try """
            spool_directory: \(dir.path)/\(name)/pg-spool
            storage:
              driver: postgres
              postgres:
                host: 127.0.0.1
                port: \(server.port)
                database: \(database)
                user: postgres
                tls: disable
            node:
              id: migrate-test

            """.appending(base).write(toFile: target, atomically: true, encoding: .utf8)
        return (source, target)
    }

    func newDatabase() throws -> String {
        let d = try server.createDatabase("mig")
        databases.append(d)
        return d
    }

    func postgres(_ database: String) -> PostgresStorage {
        var logger = Logger(label: "test.migrate")
        logger.logLevel = .warning
        return PostgresStorage(connection: PostgresConnectionSettings(host: "127.0.0.1", port: server.port, database: database, user: "postgres",
                                                                      password: nil, tls: .disable),
                               node: "migrate-test", spoolDirectory: dir.path + "/pg-spool", logger: logger)
    }

    /// A populated installation: calls with events and documents, an intake with its raw mail, jobs with SFF files,
    /// a user with a session, audit entries, a read mark, a setting, a legal hold, a retention audit record.
    func populate(_ spool: String, calls: Int = 5) async throws -> SQLiteStorage {
        let s = try SQLiteStorage(path: spool + "/faxgate.sqlite")
        try await s.migrate()
        try await s.migratePrivacy()
        let t0 = Date(timeIntervalSince1970: 1_790_000_000.123)
        var callIDs: [Int64] = []
        for i in 0..<calls {
            var c = CallRecord(kind: i % 3 == 2 ? .voice : .fax, state: .receiving, startedAt: t0.addingTimeInterval(Double(i) * 61.5),
                               callingNumber: "03012345\(i)", calledNumber: "100", extensionName: "Empfang")
            c = try await s.insertCall(c, event: "call from 03012345\(i) — ümlaut \u{1F4E0}")
            c.state = .mailed
            c.pages = i + 1
            c.fine = i % 2 == 0
            c.remoteStationID = "+49 30 \(i) 'quoted' \"x\""
            c.endedAt = c.startedAt.addingTimeInterval(30.25)
            try await s.updateCall(c, event: "mailed")
            if i % 3 != 2 {
                try await s.putDocument(StoredDocument(callID: c.id!, kind: "pdf", filename: "fax-\(i).pdf",
                                                       bytes: (0..<(1000 + i * 17)).map { UInt8(($0 * 7 + i) & 0xFF) }))
            }
            callIDs.append(c.id!)
        }
        let raw = spool + "/intake-1.eml"
        try Data("From: a@example.com\r\nSubject: fax 0301234\r\n\r\nbody \u{00E4}\r\n".utf8).write(to: URL(fileURLWithPath: raw))
        let intake = try await s.recordIntake(IntakeRecord(source: "office", uidValidity: 7, uid: 42, messageID: "<m1@example.com>",
                                                          receivedAt: t0, rawPath: raw)).record
        var jobs: [FaxJob] = []
        for i in 0..<3 {
            let sff = spool + "/job-\(i).sff"
            try Data((0..<(4096 + i)).map { UInt8(($0 * 13 + i) & 0xFF) }).write(to: URL(fileURLWithPath: sff))
            jobs.append(FaxJob(createdAt: t0.addingTimeInterval(Double(i)), intakeID: intake.id, sender: "a@example.com", senderName: "A",
                               extensionName: "Empfang", language: "de", number: "+4930123400\(i)", dialString: "030123400\(i)",
                               subject: "Job \(i)", pages: 2, fine: true, sffPath: sff, requestMessageID: "<m1@example.com>"))
        }
        jobs = try await s.insertJobs(jobs, intake: intake, event: "queued")
        var done = jobs[0]
        done.state = .done
        done.pagesSent = 2
        try await s.updateJob(done, expecting: .ready, event: "sent")
        let user = try await s.insertUser(WebUser(name: "Anna", role: .admin, extensions: ["Empfang"], passwordHash: "$2b$10$abc",
                                                  mustChangePassword: false, totpSecret: [1, 2, 3, 0, 255]))
        try await s.insertSession(WebSession(idHash: "hash-1", userID: user.id!, createdAt: t0, lastSeenAt: t0.addingTimeInterval(5),
                                             secondFactorVerified: true, csrfToken: "csrf", clientAddress: "192.0.2.1"))
        try await s.appendAudit(AuditEntry(at: t0, actor: "Anna", clientAddress: "192.0.2.1", action: "login", target: "Anna"))
        try await s.appendAudit(AuditEntry(at: t0.addingTimeInterval(1), actor: "Anna", clientAddress: "192.0.2.1", action: "user.create", target: "Bob", detail: "role user"))
        try await s.markRead(callID: callIDs[0], userID: user.id!)
        try await s.putSetting("office", value: "{\"a\":1}", expectingVersion: nil, by: "Anna")
        try await s.putSetting("office", value: "{\"a\":2}", expectingVersion: 1, by: "Anna")
        try await s.addHold(SubjectID(kind: .phone, normalized: "49301234560"), reason: "court order 1")
        try await s.append(AuditRecord(at: t0, action: "retention", category: "calls", held: 1))
        return s
    }

    func migrate(_ cfg: (source: String, target: String), _ extra: [String] = []) throws -> ToolResult {
        try runTool(GatewayHarness.faxgateBinary, ["storage", "migrate", "-c", cfg.source, "--to", cfg.target] + extra, check: false)
    }

    /// Per-table "copied now" figures of a summary.
    func copiedNow(_ text: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count >= 6, let src = Int(f[1]), Int(f[2]) == src, let copied = Int(f[3]) { out[String(f[0])] = copied }
        }
        return out
    }

    func testMigrate_populatedInstallation_journalQueueDocumentsAndAccountsAreEqual_resumesAndSecondRunIsANoOp() async throws {
        let database = try newDatabase()
        let cfg = try configs("a", database: database)
        let spool = dir.path + "/a/spool"
        let s = try await populate(spool)

        // Interrupted after 3 batches of 2 rows: part of the data is there, exit says "again".
        let first = try migrate(cfg, ["--batch", "2", "--stop-after-batches", "3"])
        XCTAssertEqual(first.status, 75, first.stdoutText + first.stderrText)
        let stopped = try XCTUnwrap(first.stdoutText.firstMatch(of: /stopped after 3 batches \((\d+) rows\)/), first.stdoutText)
        let rowsBeforeStop = Int(stopped.1)!
        XCTAssertGreaterThan(rowsBeforeStop, 0)

        let second = try migrate(cfg, ["--batch", "2"])
        XCTAssertEqual(second.status, 0, second.stdoutText + second.stderrText)
        XCTAssertTrue(second.stdoutText.contains("verified: "), second.stdoutText)
        let copied = copiedNow(second.stdoutText)
        for table in ["call", "callEvent", "document", "intake", "job", "jobEvent", "webUser", "webSession", "auditEntry",
                      "callRead", "setting", "legalHold", "auditRecord"] {
            XCTAssertNotNil(copied[table], "no summary line for \(table):\n\(second.stdoutText)")
        }
        // The resumed run copied only what the first did not (no row twice: counts verified equal above).
        let total = try await sourceRowCount(s)
        XCTAssertEqual(copied.values.reduce(0, +) + rowsBeforeStop, total, second.stdoutText)

        let third = try migrate(cfg)
        XCTAssertEqual(third.status, 0, third.stdoutText + third.stderrText)
        XCTAssertEqual(Set(copiedNow(third.stdoutText).values), [0], third.stdoutText)

        let p = postgres(database)
        defer { p.close() }
        try await assertSameAnswers(s, p)

        // Sequences: a new row on PostgreSQL gets an id after the copied ones.
        let maxCall = try await s.recentCalls(limit: 1000).compactMap(\.id).max()!
        let fresh = try await p.insertCall(CallRecord(state: .receiving, callingNumber: "1", calledNumber: "100"), event: "new")
        XCTAssertGreaterThan(fresh.id!, maxCall)
    }

    func sourceRowCount(_ s: SQLiteStorage) async throws -> Int {
        var n = 0
        for t in try await s.exportTables() { n += try await s.exportCount(t) }
        return n
    }

    func assertSameAnswers(_ s: SQLiteStorage, _ p: PostgresStorage) async throws {
        let calls = try await s.recentCalls(limit: 100)
        XCTAssertFalse(calls.isEmpty)
        let pgCalls = try await p.recentCalls(limit: 100)
        XCTAssertEqual(pgCalls, calls)
        let q = CallQuery(limit: 3)
        let firstPage = try await s.searchCalls(q)
        let pgFirstPage = try await p.searchCalls(q)
        XCTAssertEqual(pgFirstPage, firstPage)
        let next = CallQuery(beforeID: firstPage.last!.id, limit: 3)
        let nextPage = try await s.searchCalls(next)
        let pgNextPage = try await p.searchCalls(next)
        XCTAssertEqual(pgNextPage, nextPage)
        let count = try await s.countCalls(CallQuery(limit: 1))
        let pgCount = try await p.countCalls(CallQuery(limit: 1))
        XCTAssertEqual(pgCount, count)
        for c in calls {
            let events = try await s.events(callID: c.id!)
            let pgEvents = try await p.events(callID: c.id!)
            XCTAssertEqual(pgEvents, events)
            let docs = try await s.documents(callID: c.id!)
            let pgDocs = try await p.documents(callID: c.id!)
            XCTAssertEqual(pgDocs, docs)
        }
        let all = Set(FaxJob.State.allCases)
        let jobs = try await s.jobs(in: all)
        XCTAssertEqual(jobs.count, 3)
        let pgJobs = try await p.jobs(in: all)
        XCTAssertEqual(pgJobs, jobs)
        for j in jobs {
            let doc = try await s.jobDocument(j)
            XCTAssertNotNil(doc)
            let pgDoc = try await p.jobDocument(j)
            XCTAssertEqual(pgDoc, doc)
            let ev = try await s.jobEvents(jobID: j.id!)
            let pgEv = try await p.jobEvents(jobID: j.id!)
            XCTAssertEqual(pgEv, ev)
        }
        let intakes = try await s.intakes(in: Set(IntakeRecord.State.allCases))
        let pgIntakes = try await p.intakes(in: Set(IntakeRecord.State.allCases))
        XCTAssertEqual(pgIntakes, intakes)
        for i in intakes {
            let raw = try await s.intakeMessage(i)
            XCTAssertNotNil(raw)
            let pgRaw = try await p.intakeMessage(i)
            XCTAssertEqual(pgRaw, raw)
        }
        let users = try await s.users()
        let pgUsers = try await p.users()
        XCTAssertEqual(pgUsers, users)
        let session = try await s.session(idHash: "hash-1")
        let pgSession = try await p.session(idHash: "hash-1")
        XCTAssertEqual(pgSession, session)
        let audit = try await s.auditEntries(limit: 10, beforeID: nil, actor: nil, action: nil)
        let pgAudit = try await p.auditEntries(limit: 10, beforeID: nil, actor: nil, action: nil)
        XCTAssertEqual(pgAudit, audit)
        let reads = try await s.readCallIDs(userID: users[0].id!, among: calls.compactMap(\.id))
        let pgReads = try await p.readCallIDs(userID: users[0].id!, among: calls.compactMap(\.id))
        XCTAssertEqual(pgReads, reads)
        let setting = try await s.setting("office")
        let pgSetting = try await p.setting("office")
        XCTAssertEqual(pgSetting, setting)
        // What `gdpr` and `retention` list: holds and the retention audit.
        let holds = try await s.holds()
        let pgHolds = try await p.holds()
        XCTAssertEqual(pgHolds, holds)
        let records = try await s.auditRecords(limit: 10)
        let pgRecords = try await p.auditRecords(limit: 10)
        XCTAssertEqual(pgRecords.map { "\($0)" }, records.map { "\($0)" })
    }

    func testMigrate_targetWithRowsFromElsewhere_isRefused_andAnotherSourceIsRefusedToo() async throws {
        let database = try newDatabase()
        // A gateway already ran on the target: a call of its own.
        let p = postgres(database)
        defer { p.close() }
        try await p.migrate()
        _ = try await p.insertCall(CallRecord(state: .receiving, callingNumber: "1", calledNumber: "100"), event: "pg's own")
        let a = try configs("a", database: database)
        _ = try await populate(dir.path + "/a/spool", calls: 2)
        let refused = try migrate(a)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue((refused.stdoutText + refused.stderrText).contains("did not come from"), refused.stdoutText + refused.stderrText)
        let marks = try server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'faxgate_import_source'", database: database)
        XCTAssertEqual(marks.trimmingCharacters(in: .whitespacesAndNewlines), "0", "a refused import must leave no mark")

        // An empty target filled from installation b refuses installation c.
        let empty = try newDatabase()
        let b = try configs("b", database: empty)
        _ = try await populate(dir.path + "/b/spool", calls: 1)
        let ok = try migrate(b)
        XCTAssertEqual(ok.status, 0, ok.stdoutText + ok.stderrText)
        let c = try configs("c", database: empty)
        _ = try await populate(dir.path + "/c/spool", calls: 1)
        let other = try migrate(c)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue((other.stdoutText + other.stderrText).contains("filled from another source"), other.stdoutText + other.stderrText)
    }
}
