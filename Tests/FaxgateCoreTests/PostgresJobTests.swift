import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import Synchronization
import TestSupport
import XCTest

/// What the PostgreSQL plugin adds for several nodes beyond the shared contract: a mail is decided once, the
/// rendered document travels in the database, the number guard is in the schema, new jobs wake the other nodes.
final class PostgresJobTests: XCTestCase {
    var server: PostgresServer!
    var db = ""
    var dir: TemporaryDirectory!
    var handles: [PostgresStorage] = []

    override func setUp() async throws {
        server = try PostgresServer.shared()
        db = try server.createDatabase()
        dir = try TemporaryDirectory("pgjobs")
    }

    override func tearDown() async throws {
        handles.forEach { $0.close() }
        handles = []
        server.dropDatabase(db)
    }

    func node(_ name: String) async throws -> PostgresStorage {
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = db; settings.user = "postgres"
        settings.tls = "disable"  // trusted loopback: TLS is not the point here
        var logger = Logger(label: "pgjobs-\(name)")
        logger.logLevel = .warning
        let s = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: name, spoolDirectory: dir.path, logger: logger)
        handles.append(s)
        try await s.migrate()
        return s
    }

    func job(_ number: String, sff: String, intakeID: Int64? = nil) -> FaxJob {
        FaxJob(intakeID: intakeID, sender: "a@praxis.example", senderName: nil, extensionName: "Front", language: "de", number: number,
               dialString: "0" + number.dropFirst(3), subject: "s", pages: 1, fine: true, sffPath: sff, requestMessageID: nil)
    }

    /// Two nodes decide the same fetched message at once: exactly one creates jobs, the other creates none.
    func testTwoNodesDecidingOneMailCreateJobsOnce() async throws {
        let a = try await node("n1"), b = try await node("n2")
        let raw = dir.path + "/m.eml"
        try Data("From: a@praxis.example\r\n\r\nbody".utf8).write(to: URL(fileURLWithPath: raw))
        var intake = try await a.recordIntake(IntakeRecord(source: "faxin", uidValidity: 7, uid: 42, messageID: "<m@x>",
                                                           receivedAt: Date(), rawPath: raw)).record
        intake.state = .accepted
        intake.detail = "1 job(s)"
        let decided = intake
        let sff = dir.path + "/intake-\(intake.id!).sff"
        try Data("SFF".utf8).write(to: URL(fileURLWithPath: sff))
        let jobA = job("+49301110001", sff: sff, intakeID: intake.id), jobB = job("+49301110001", sff: sff, intakeID: intake.id)
        async let fromA = try? a.insertJobs([jobA], intake: decided, event: "queued by n1")
        async let fromB = try? b.insertJobs([jobB], intake: decided, event: "queued by n2")
        let won = await [fromA, fromB].compactMap { $0 }
        XCTAssertEqual(won.count, 1, "exactly one node decides the mail")
        XCTAssertEqual(won.first?.count, 1)
        let all = try await a.recentJobs(limit: 10)
        XCTAssertEqual(all.filter { $0.intakeID == intake.id }.count, 1, "the loser created no job")
        let stored = try await b.intakes(in: [.accepted])
        XCTAssertEqual(stored.map(\.id), [intake.id])
        XCTAssertEqual(stored.first?.detail, "1 job(s)")

        // A late repeat (a node that crashed after deciding and decides again) creates nothing either.
        do {
            _ = try await b.insertJobs([jobB], intake: decided, event: "again")
            XCTFail("a decided mail must not create jobs again")
        } catch {
            XCTAssertTrue("\(error)".contains("not fetched"), "\(error)")
        }
        let after = try await a.recentJobs(limit: 10)
        XCTAssertEqual(after.count, 1)
    }

    /// The rendered SFF is stored at insertJobs: any node reads it after the spool file is gone; a mail's recipients
    /// share one copy; a resend on a node without the file finds it; a job without a file has none.
    func testRenderedDocumentTravelsInTheDatabase() async throws {
        let a = try await node("n1"), b = try await node("n2")
        let sff = dir.path + "/intake-1.sff"
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }  // out of line (TOAST), with every byte value
        try Data(bytes).write(to: URL(fileURLWithPath: sff))
        let two = try await a.insertJobs([job("+49301110001", sff: sff), job("+49301110002", sff: sff)], intake: nil, event: "queued")
        try FileManager.default.removeItem(atPath: sff)
        for j in two {
            let read = try await b.jobDocument(j)
            XCTAssertEqual(read, bytes, "another node reads the document without the file")
        }
        let copies = try server.psql("SELECT count(*) FROM jobDocument", database: db).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(copies, "1", "the recipients of one mail share one stored document")

        let resend = try await b.insertJobs([job("+49301110001", sff: sff)], intake: nil, event: "resend of job #\(two[0].id!)")
        let resent = try await a.jobDocument(resend[0])
        XCTAssertEqual(resent, bytes, "a resend where the file is not finds the stored document")

        let none = try await a.insertJobs([job("+49301110003", sff: dir.path + "/never-rendered.sff")], intake: nil, event: "queued")
        let missing = try await b.jobDocument(none[0])
        XCTAssertNil(missing)
    }

    /// The schema itself refuses a second active job for one number, whoever writes it.
    func testSchemaRefusesTwoActiveJobsForOneNumber() async throws {
        let a = try await node("n1")
        let jobs = try await a.insertJobs([job("+49301110001", sff: "/nonexistent"), job("+49301110001", sff: "/nonexistent")],
                                          intake: nil, event: "queued")
        var first = jobs[0], second = jobs[1]
        first.state = .active
        try await a.updateJob(first, expecting: .ready, event: "dialling")
        second.state = .active
        do {
            try await a.updateJob(second, expecting: .ready, event: "dialling too")
            XCTFail("two active jobs for one number")
        } catch {
            XCTAssertTrue("\(error)".contains("one call per number"), "\(error)")
        }
        let stored = try await a.job(id: second.id!)
        XCTAssertEqual(stored?.state, .ready)
        let events = try await a.jobEvents(jobID: second.id!)
        XCTAssertEqual(events.map(\.text), ["queued"], "a refused write leaves no event")
        let bad = try? server.psql("UPDATE job SET state = 'active' WHERE id = \(second.id!)", database: db)
        XCTAssertNil(bad, "the partial unique index refuses it in SQL too")
    }

    /// New jobs wake the other nodes (NOTIFY faxgate_jobs at insertJobs), so they need not wait for the next poll.
    func testInsertedJobsWakeOtherNodes() async throws {
        let a = try await node("n1")
        var logger = Logger(label: "pgjobs-listener")
        logger.logLevel = .warning
        var settings = NodeSettings()
        settings.heartbeatSeconds = 1
        let listener = a.nodeCoordination(node: "n2", settings: settings, logger: logger)
        let run = Task { try await listener.run() }
        defer { run.cancel() }
        for _ in 0..<200 where listener.isFenced { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertFalse(listener.isFenced, "the listener reached the database")
        // Subscribed after the session is up: its own "reconnected" wake-up is behind us, only a NOTIFY counts now.
        let wakeups = listener.jobWakeups()
        let count = Mutex(0)
        let reader = Task { for await _ in wakeups { count.withLock { $0 += 1 } } }
        defer { reader.cancel() }
        // LISTEN is registered concurrently with the session's first heartbeat: insert until heard (bounded: "never").
        var inserted = 0
        for _ in 0..<60 where count.withLock({ $0 }) == 0 {
            _ = try await a.insertJobs([job("+4930222\(String(format: "%04d", inserted))", sff: "/nonexistent")], intake: nil, event: "queued")
            inserted += 1
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertGreaterThan(count.withLock { $0 }, 0, "an insert woke the other node")
        let ready = try await a.jobs(in: [.ready])
        XCTAssertEqual(ready.count, inserted)
    }
}
