import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import TestSupport
import XCTest

/// A real PostgreSQL database (the test cluster) with the plugin connected as its owner over verified TLS, and a
/// local spool for the files a node still keeps (outbox traces, files read at intake).
final class PostgresRetentionFixture {
    let server: PostgresServer
    let database: String
    let dir: TemporaryDirectory
    let spool: String
    let storage: PostgresStorage
    let day: TimeInterval = 86_400

    init() async throws {
        server = try PostgresServer.shared()
        database = try server.createDatabase("privacy")
        dir = try TemporaryDirectory("privacy-pg")
        spool = dir.path + "/spool"
        for sub in ["incoming", "outgoing", "intake", "rejected", "outbox/failed", "outbox/sent"] {
            try FileManager.default.createDirectory(atPath: spool + "/" + sub, withIntermediateDirectories: true)
        }
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = database; settings.user = server.passwordRole
        settings.passwordFile = try server.writePasswordFile(in: dir.path)
        settings.tls = "verify-full"; settings.caFile = server.caFile
        // The owner role, not a superuser: VACUUM must work with the rights the gateway has.
        storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: "n1", spoolDirectory: spool, logger: Logger(label: "t"))
        try await storage.migratePrivacy()
    }

    func close() {
        storage.close()
        server.dropDatabase(database)
    }

    /// A received fax, mailed and finished, with its document stored in the database: a small one (kept in the row)
    /// and a large one of incompressible bytes (TOAST) carrying the marker, and a failed outbox copy on this node.
    @discardableResult
    func fax(caller: String, station: String, ageDays: Double, marker: String, state: CallRecord.State = .mailFailed) async throws -> Int64 {
        var call = CallRecord(state: .receiving, startedAt: Date().addingTimeInterval(-ageDays * day), callingNumber: caller,
                              calledNumber: "100", extensionName: "Empfang")
        call = try await storage.insertCall(call, event: "incoming call from \(caller)")
        let id = call.id!
        call.remoteStationID = station
        // Several updates leave older row versions behind: the physical deletion must catch those too.
        for s in [CallRecord.State.received, .mailQueued, state] {
            call.state = s
            call.detail = "state \(s.rawValue) for \(caller)"
            try await storage.updateCall(call, event: "\(s.rawValue) from \(station)")
        }
        try await storage.putDocument(StoredDocument(callID: id, kind: "pdf", filename: "fax-\(id).pdf", bytes: Array("%PDF-\(marker)".utf8)))
        try await storage.putDocument(StoredDocument(callID: id, kind: "sff", filename: "fax-\(id).sff", bytes: Self.bulky(marker: marker)))
        try "{\"id\":\"o\(id)\",\"envelopeFrom\":\"fax@example.com\",\"recipients\":[\"a@example.com\"],\"callID\":\(id),\"queuedAt\":\"2024-01-01T00:00:00Z\",\"attempts\":3,\"nextAttemptAt\":\"2024-01-01T00:00:00Z\"}"
            .write(toFile: "\(spool)/outbox/failed/o\(id).json", atomically: true, encoding: .utf8)
        try "Subject: Fax von \(caller)\r\n\r\nEML-\(marker)".write(toFile: "\(spool)/outbox/failed/o\(id).eml", atomically: true, encoding: .utf8)
        return id
    }

    /// 40 KB of random bytes with the marker at the start, middle and end: stored out of line and uncompressed.
    static func bulky(marker: String) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<40_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let m = Array("SFF-\(marker)".utf8)
        for at in [10, 20_000, 40_000 - m.count - 10] { bytes.replaceSubrange(at..<(at + m.count), with: m) }
        return bytes
    }

    func rejectedCall(caller: String, ageDays: Double) async throws -> Int64 {
        var call = CallRecord(state: .rejected, startedAt: Date().addingTimeInterval(-ageDays * day), callingNumber: caller, calledNumber: "999")
        call.outcome = .rejected
        return try await storage.insertCall(call, event: "rejected call from \(caller)").id!
    }

    func voicemail(caller: String, ageDays: Double, marker: String) async throws -> Int64 {
        var call = CallRecord(kind: .voice, state: .receiving, startedAt: Date().addingTimeInterval(-ageDays * day),
                              callingNumber: caller, calledNumber: "100", extensionName: "Empfang")
        call = try await storage.insertCall(call, event: "voice call from \(caller)")
        call.state = .mailed
        try await storage.updateCall(call, event: "mailed")
        try await storage.putDocument(StoredDocument(callID: call.id!, kind: "wav", filename: "vm.wav", bytes: Array("RIFF-\(marker)".utf8)))
        return call.id!
    }

    /// An order mail (stored in the database at intake) with one job; finished unless `state` is `.ready`.
    func job(number: String, sender: String, ageDays: Double, state: FaxJob.State, marker: String) async throws -> FaxJob {
        let created = Date().addingTimeInterval(-ageDays * day)
        let raw = "\(spool)/intake/faxin-\(marker).eml"
        try "From: \(sender)\r\nTo: \(number)@fax.example.com\r\nSubject: ORDER-\(marker)\r\n\r\nbody \(marker)".write(toFile: raw, atomically: true, encoding: .utf8)
        var intake = try await storage.recordIntake(IntakeRecord(source: "faxin", uidValidity: 1, uid: Int64(abs(marker.hashValue % 1_000_000)),
                                                                 messageID: "<\(marker)@x>", receivedAt: created, rawPath: raw)).record
        intake.state = .accepted
        let sff = "\(spool)/outgoing/intake-\(intake.id!).sff"
        try Data(Self.bulky(marker: "JOB-\(marker)")).write(to: URL(fileURLWithPath: sff))
        var j = FaxJob(state: .ready, createdAt: created, intakeID: intake.id, sender: sender, senderName: nil, extensionName: "Empfang",
                       language: "de", number: number, dialString: "0" + number.dropFirst(3), subject: "ORDER-\(marker)", pages: 1,
                       fine: true, sffPath: sff, requestMessageID: "<\(marker)@x>")
        j = try await storage.insertJobs([j], intake: intake, event: "queued for \(number)").first!
        guard state != .ready else { return j }
        var done = j
        done.state = state
        done.remoteStationID = "REMOTE-\(marker)"
        try await storage.updateJob(done, expecting: .ready, event: "sent to \(number)")
        FileManager.default.createFile(atPath: "\(spool)/outbox/sent/job-\(j.id!)-done", contents: nil)
        return done
    }

    func rejectedMail(sender: String, ageDays: Double, marker: String) async throws -> IntakeRecord {
        let raw = "\(spool)/rejected/r-\(marker).eml"
        try "From: Someone <\(sender)>\r\nSubject: REJ-\(marker)\r\n\r\nsecret \(marker)".write(toFile: raw, atomically: true, encoding: .utf8)
        var r = try await storage.recordIntake(IntakeRecord(source: "faxin", uidValidity: 2, uid: Int64(abs(marker.hashValue % 1_000_000)),
                                                            messageID: "<r-\(marker)@x>", receivedAt: Date().addingTimeInterval(-ageDays * day),
                                                            rawPath: raw)).record
        r.state = .rejected
        r.detail = "not allowed"
        try await storage.updateIntake(r)
        FileManager.default.createFile(atPath: "\(spool)/outbox/sent/refusal-\(r.id!)", contents: nil)
        return r
    }

    func engine(vacuum: PostgresRetentionVacuum = .plain, holds: [String] = []) -> RetentionEngine {
        var settings = RetentionSettings()
        settings.days = ["received_faxes": 90, "journal": 365, "sent_faxes": 90, "voicemails": 90, "rejected_mails": 30]
        settings.exportBeforeDelete = false
        return RetentionEngine(categories: storage.retentionCategories(spoolDirectory: spool, countryCode: "49", vacuum: vacuum),
                               settings: settings, configHolds: holds.compactMap { SubjectID($0, countryCode: "49") },
                               holdStore: storage, audit: storage, exporter: nil, logger: Logger(label: "t"))
    }

    /// "base/<db>/<filenode>[.n|_fsm|_vm]" → the relation's name in this database (for the report).
    func relationName(_ path: String) -> String {
        let parts = path.split(separator: "/")
        guard parts.count == 3, let node = parts[2].split(whereSeparator: { $0 == "." || $0 == "_" }).first, Int(node) != nil else { return path }
        let name = (try? server.psql("SELECT COALESCE(pg_filenode_relation(0, \(node))::regclass::text, '?')", database: database))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        return "\(path) (\(name))"
    }

    /// How often the table was vacuumed by hand (pg_stat_user_tables).
    func vacuumCount(_ table: String) throws -> Int {
        Int(try server.psql("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = '\(table.lowercased())'", database: database)
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// Reads the cluster's files directly (root may read the postgres user's data directory).
enum DataDirectoryScan {
    /// Every regular file under a directory, with its path relative to `root`.
    static func files(under root: String) -> [String] {
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: root)
        while let rel = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.append(rel) }
        }
        return out.sorted()
    }

    /// The files under `root` (and its listed subdirectories) that contain any of the needles; per needle.
    static func find(_ root: String, subdirectories: [String], for needles: [String]) -> [String: [String]] {
        let bytes = needles.map { ($0, Data($0.utf8)) }
        var found: [String: [String]] = [:]
        for sub in subdirectories {
            for rel in files(under: root + "/" + sub) {
                // A file may vanish while we scan (a checkpoint recycles WAL, a dropped database): skip it.
                guard let data = FileManager.default.contents(atPath: "\(root)/\(sub)/\(rel)") else { continue }
                for (needle, n) in bytes where data.range(of: n) != nil { found[needle, default: []].append("\(sub)/\(rel)") }
            }
        }
        return found
    }
}

final class PostgresRetentionTests: XCTestCase {
    /// Old items go (rows and documents in the database, traces in the spool), newer and queued ones stay, a hold
    /// keeps its items, each category writes an audit row and VACUUM runs on the tables it deleted from.
    func testRetentionOnPostgres_oldGone_newKept_holdsRespected_auditWritten_vacuumed() async throws {
        let f = try await PostgresRetentionFixture()
        defer { f.close() }
        let oldFax = try await f.fax(caller: "+49 30 5550001", station: "ALTPRAXIS", ageDays: 200, marker: "OLDFAX")
        let heldFax = try await f.fax(caller: "030 5550009", station: "HELDPRAXIS", ageDays: 200, marker: "HELDFAX")
        let inFlight = try await f.fax(caller: "+49 30 5550008", station: "BUSY", ageDays: 200, marker: "INFLIGHT", state: .mailQueued)
        let newFax = try await f.fax(caller: "+49 40 5550003", station: "NEUPRAXIS", ageDays: 10, marker: "NEWFAX")
        let oldRejected = try await f.rejectedCall(caller: "+49 89 5550002", ageDays: 400)
        let newRejected = try await f.rejectedCall(caller: "+49 89 5550004", ageDays: 20)
        let oldVoice = try await f.voicemail(caller: "+49 30 5557777", ageDays: 100, marker: "OLDVOICE")
        let newVoice = try await f.voicemail(caller: "+49 30 5558888", ageDays: 3, marker: "NEWVOICE")
        let oldJob = try await f.job(number: "+49305551111", sender: "old@example.com", ageDays: 120, state: .done, marker: "OLDJOB")
        let queuedJob = try await f.job(number: "+49305552222", sender: "wait@example.com", ageDays: 120, state: .ready, marker: "QUEUEDJOB")
        let newJob = try await f.job(number: "+49305553333", sender: "new@example.com", ageDays: 5, state: .failed, marker: "NEWJOB")
        let oldMail = try await f.rejectedMail(sender: "spammer@example.org", ageDays: 40, marker: "OLDREJECT")
        let newMail = try await f.rejectedMail(sender: "recent@example.org", ageDays: 2, marker: "NEWREJECT")
        try await f.storage.addHold(SubjectID("+49305550009", countryCode: "49")!, reason: "case 7")

        // A dry run changes nothing and writes no audit row.
        let dry = try await f.engine().run(dryRun: true)
        XCTAssertEqual(dry.lines.first { $0.category == "received_faxes" }?.expired, 2, "old + held; the in-flight one is the pipeline's")
        let auditAfterDry = try await f.storage.auditRecords(limit: 10)
        XCTAssertEqual(auditAfterDry.count, 0)
        let oldStillThere = try await f.storage.call(id: oldFax)
        XCTAssertNotNil(oldStillThere)

        let vacuumsBefore = try ["call", "document", "callEvent", "job", "intake"].map(f.vacuumCount)
        let report = try await f.engine().run(dryRun: false)

        // Gone: rows, history, documents, jobs with their document, intake rows with their raw mail, local traces.
        for id in [oldFax, oldRejected, oldVoice] {
            let call = try await f.storage.call(id: id)
            XCTAssertNil(call, "call \(id) survived")
            let docs = try await f.storage.documents(callID: id)
            XCTAssertEqual(docs.count, 0)
            let events = try await f.storage.events(callID: id)
            XCTAssertEqual(events.count, 0)
        }
        let goneJob = try await f.storage.job(id: oldJob.id!)
        XCTAssertNil(goneJob)
        let goneJobDoc = try await f.storage.jobDocument(oldJob)
        XCTAssertNil(goneJobDoc)
        let rejectedLeft = try await f.storage.intakes(in: [.rejected])
        XCTAssertEqual(rejectedLeft.map(\.id), [newMail.id])
        let goneRaw = try await f.storage.intakeMessage(oldMail)
        XCTAssertNil(goneRaw)
        for path in ["outbox/failed/o\(oldFax).eml", "outbox/failed/o\(oldFax).json", "outbox/sent/job-\(oldJob.id!)-done",
                     "outbox/sent/refusal-\(oldMail.id!)"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: f.spool + "/" + path), path)
        }

        // Kept: newer items, the held fax, the call the pipeline still works on, the queued job with its document.
        for id in [heldFax, inFlight, newFax, newRejected, newVoice] {
            let call = try await f.storage.call(id: id)
            XCTAssertNotNil(call, "call \(id) was deleted")
        }
        let keptDocs = try await f.storage.documents(callID: heldFax)
        XCTAssertEqual(keptDocs.count, 2)
        for job in [queuedJob, newJob] {
            let kept = try await f.storage.job(id: job.id!)
            XCTAssertEqual(kept?.state, job.state)
            let doc = try await f.storage.jobDocument(job)
            XCTAssertEqual(doc.map { Data($0).range(of: Data("SFF-JOB-".utf8)) != nil }, true)
        }
        let keptRaw = try await f.storage.intakeMessage(newMail)
        XCTAssertNotNil(keptRaw)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(f.spool)/outbox/failed/o\(newFax).eml"))

        // Report and audit: counts per category, the hold counted.
        let faxes = try XCTUnwrap(report.lines.first { $0.category == "received_faxes" })
        XCTAssertEqual(faxes.deleted.items, 1)
        XCTAssertEqual(faxes.held, 1)
        XCTAssertEqual(faxes.deleted.rows, 1 + 2 + 4, "call + 2 documents + 4 history events")
        XCTAssertEqual(faxes.deleted.files, 2, "failed outbox json + eml")
        let audit = try await f.storage.auditRecords(limit: 20)
        XCTAssertEqual(Set(audit.map(\.category)), ["received_faxes", "journal", "voicemails", "sent_faxes", "rejected_mails"])
        XCTAssertEqual(audit.first { $0.category == "received_faxes" }?.held, 1)
        for category in ["journal", "voicemails", "sent_faxes", "rejected_mails"] {
            XCTAssertEqual(audit.first { $0.category == category }?.items, 1, category)
        }
        XCTAssertTrue(audit.allSatisfy { $0.action == "retention" })

        // VACUUM ran on every table a category deleted from.
        let vacuumsAfter = try ["call", "document", "callEvent", "job", "intake"].map(f.vacuumCount)
        for (i, table) in ["call", "document", "callEvent", "job", "intake"].enumerated() {
            XCTAssertGreaterThan(vacuumsAfter[i], vacuumsBefore[i], "\(table) not vacuumed")
        }

        // Holds, statistics and kinds read back from the database.
        let holds = try await f.storage.holdDetails()
        XCTAssertEqual(holds.map(\.subject.normalized), ["49305550009"])
        XCTAssertEqual(holds.first?.reason, "case 7")
        let released = try await f.storage.releaseHold(SubjectID("0305550009", countryCode: "49")!)
        XCTAssertTrue(released)
        let releasedAgain = try await f.storage.releaseHold(SubjectID("0305550009", countryCode: "49")!)
        XCTAssertFalse(releasedAgain)
        let stats = try await f.storage.statistics()
        XCTAssertEqual(stats["documents"], 2 * 3 + 1, "held, in-flight and new fax: 2 each; new voicemail: 1")
        XCTAssertEqual(stats["jobs"], 2)
        XCTAssertEqual(stats["job_documents"], 2, "the old job's stored SFF went with it")
        XCTAssertEqual(stats["legal_holds"], 0)
        let kinds = try await f.storage.storedDataKinds()
        XCTAssertEqual(kinds, ["received_faxes", "voicemails", "sent_faxes", "rejected_mails"])

        // A second run finds nothing more (the held fax is still held by nobody now, but it is the only old one left).
        let again = try await f.engine(holds: ["+49 30 5550009"]).run(dryRun: false)
        XCTAssertEqual(again.lines.reduce(0) { $0 + $1.deleted.items }, 0)
    }

    /// Export and erasure of one person on PostgreSQL: the documents come from the database as bytes.
    func testExportAndErase_forOneSubject_readsDocumentsFromTheDatabase() async throws {
        let f = try await PostgresRetentionFixture()
        defer { f.close() }
        let a = try await f.fax(caller: "+49 30 5550021", station: "SUBJECT", ageDays: 3, marker: "SUBJECTFAX1")
        _ = try await f.rejectedCall(caller: "0049 30 5550021", ageDays: 1)
        let other = try await f.fax(caller: "+49 30 5550022", station: "OTHER", ageDays: 2, marker: "OTHERFAX")
        let subject = try XCTUnwrap(SubjectID("030 555 0021", countryCode: "49"))
        let engine = f.engine()
        var exported: [UInt8] = []
        var items = 0
        for (category, list) in try await engine.items(about: subject) {
            for item in list {
                items += 1
                for entry in try await category.exportEntries(for: item) {
                    switch entry.source {
                    case .bytes(let b): exported += b
                    case .file(let p): exported += [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
                    }
                }
            }
        }
        XCTAssertEqual(items, 2)
        XCTAssertNotNil(Data(exported).range(of: Data("SFF-SUBJECTFAX1".utf8)), "the stored document is in the export")
        XCTAssertNotNil(Data(exported).range(of: Data("%PDF-SUBJECTFAX1".utf8)))
        XCTAssertNil(Data(exported).range(of: Data("OTHERFAX".utf8)))

        let erased = try await engine.erase(subject: subject, dryRun: false)
        XCTAssertEqual(erased.lines.reduce(0) { $0 + $1.deleted.items }, 2)
        let gone = try await f.storage.call(id: a)
        XCTAssertNil(gone)
        let kept = try await f.storage.documents(callID: other)
        XCTAssertEqual(kept.count, 2)
        let audit = try await f.storage.auditRecords(limit: 10)
        XCTAssertEqual(audit.filter { $0.action == "erase" }.reduce(0) { $0 + $1.items }, 2)
    }
}
