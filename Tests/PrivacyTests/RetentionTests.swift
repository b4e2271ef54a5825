import ArchiveExport
import FaxgateCore
import Foundation
import Logging
import SQLiteStorage
import SupportSnapshot
import TestSupport
import XCTest

/// A spool directory with a real SQLite journal and files, old and new data side by side.
final class RetentionFixture {
    let dir: TemporaryDirectory
    let spool: String
    let storage: SQLiteStorage
    var config: Configuration
    let day: TimeInterval = 86_400

    init() async throws {
        dir = try TemporaryDirectory("privacy-retention")
        spool = dir.path + "/spool"
        for sub in ["incoming", "outbox/failed", "log", "snapshots"] {
            try FileManager.default.createDirectory(atPath: spool + "/" + sub, withIntermediateDirectories: true)
        }
        storage = try SQLiteStorage(path: spool + "/faxgate.sqlite")
        try await storage.migrate()
        try storage.migratePrivacy()
        config = try ConfigLoader.parse("""
            spool_directory: \(spool)
            smtp: {host: localhost, port: 25, security: none}
            mail: {from: fax@example.com}
            extensions: [{name: Empfang, numbers: ["100"], email: [empfang@example.com]}]
            privacy: {country_code: "49"}
            retention:
              days: {received_faxes: 90, journal: 365, logs: 30, snapshots: 14}
            """)
    }

    /// A received fax with every derived file: spool SFF, stored PDF, a failed outbox copy.
    @discardableResult
    func fax(caller: String, station: String, ageDays: Double, marker: String) async throws -> Int64 {
        var call = CallRecord(state: .receiving, startedAt: Date().addingTimeInterval(-ageDays * day), callingNumber: caller,
                              calledNumber: "100", extensionName: "Empfang")
        call = try await storage.insertCall(call, event: "incoming call from \(caller)")
        let id = call.id!
        call.spoolPath = "\(spool)/incoming/\(id).sff"
        try Data("SFF-\(marker)-PAGEDATA".utf8).write(to: URL(fileURLWithPath: call.spoolPath!))
        call.remoteStationID = station
        // Several updates leave older row versions in the page's free space: the physical delete must catch those too.
        for state in [CallRecord.State.received, .mailQueued, .mailFailed] {
            call.state = state
            call.detail = "state \(state.rawValue) for \(caller)"
            try await storage.updateCall(call, event: "\(state.rawValue) from \(station)")
        }
        try await storage.putDocument(StoredDocument(callID: id, kind: "pdf", filename: "fax-\(caller).pdf", bytes: Array("%PDF-\(marker)".utf8)))
        let envelope = """
            {"id":"o\(id)","envelopeFrom":"fax@example.com","recipients":["empfang@example.com"],"callID":\(id),
             "queuedAt":"2024-01-01T00:00:00Z","attempts":3,"nextAttemptAt":"2024-01-01T00:00:00Z"}
            """
        try envelope.write(toFile: "\(spool)/outbox/failed/o\(id).json", atomically: true, encoding: .utf8)
        try "Subject: Fax von \(caller)\r\n\r\nEML-\(marker)".write(toFile: "\(spool)/outbox/failed/o\(id).eml", atomically: true, encoding: .utf8)
        return id
    }

    func rejected(caller: String, ageDays: Double) async throws {
        var call = CallRecord(state: .rejected, startedAt: Date().addingTimeInterval(-ageDays * day), callingNumber: caller, calledNumber: "999")
        call.outcome = .rejected
        _ = try await storage.insertCall(call, event: "rejected call from \(caller)")
    }

    func logFile(ageDays: Double, _ text: String) throws {
        let name = DailyLogFiles.fileName(for: Date().addingTimeInterval(-ageDays * day))
        try text.write(toFile: "\(spool)/log/\(name)", atomically: true, encoding: .utf8)
    }

    func engine(holds: [String] = [], exporter: (any ArchiveExporter)? = nil) -> RetentionEngine {
        var settings = config.retention
        settings.exportBeforeDelete = exporter != nil
        return RetentionEngine(
            categories: [
                ReceivedFaxesCategory(storage: storage, spoolDirectory: spool, countryCode: "49"),
                JournalCategory(storage: storage, spoolDirectory: spool, countryCode: "49"),
                LogFilesCategory(directory: spool + "/log"),
                SnapshotsCategory(directory: spool + "/snapshots"),
            ],
            settings: settings, configHolds: holds.compactMap { SubjectID($0, countryCode: "49") }, holdStore: storage,
            audit: storage, exporter: exporter, logger: Logger(label: "test"))
    }

    /// Every file under the directory (database, WAL and SHM included), with its bytes.
    func allFiles(under root: String? = nil) -> [(String, Data)] {
        let base = root ?? dir.path
        let e = FileManager.default.enumerator(atPath: base)
        var out: [(String, Data)] = []
        while let rel = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            let p = base + "/" + rel
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue, let d = FileManager.default.contents(atPath: p) {
                out.append((rel, d))
            }
        }
        return out
    }

    /// Where `needle` occurs (as UTF-8 bytes) anywhere under the directory.
    func occurrences(of needle: String, under root: String? = nil) -> [String] {
        let n = Data(needle.utf8)
        return allFiles(under: root).filter { $0.1.range(of: n) != nil }.map(\.0)
    }
}

final class RetentionTests: XCTestCase {
    func testRetention_removesRowsAndEveryDerivedFile_leavesNothingBehind_keepsNewer() async throws {
        let f = try await RetentionFixture()
        let oldID = try await f.fax(caller: "+49 30 5550001", station: "+49 30 5550001 ALTPRAXIS", ageDays: 200, marker: "OLDCONTENT")
        try await f.rejected(caller: "+49 89 5550002", ageDays: 400)
        let newID = try await f.fax(caller: "+49 40 5550003", station: "NEUPRAXIS", ageDays: 10, marker: "NEWCONTENT")
        try await f.rejected(caller: "+49 69 5550004", ageDays: 20)
        try f.logFile(ageDays: 45, "old line OLDLOGLINE\n")
        try f.logFile(ageDays: 1, "new line NEWLOGLINE\n")
        try "OLDSNAPSHOT".write(toFile: f.spool + "/snapshots/faxgate-snapshot-old.zip", atomically: true, encoding: .utf8)
        let info = SnapshotInfo(name: "faxgate-snapshot-old", createdAt: Date().addingTimeInterval(-30 * f.day), from: nil, to: nil, bytes: 11, entries: 1)
        try SnapshotInfo.encoder.encode(info).write(to: URL(fileURLWithPath: f.spool + "/snapshots/faxgate-snapshot-old.json"))

        let oldNeedles = ["5550001", "ALTPRAXIS", "OLDCONTENT", "5550002", "OLDLOGLINE", "OLDSNAPSHOT", "incoming/\(oldID).sff", "o\(oldID).eml"]
        for needle in ["5550001", "OLDCONTENT", "5550002", "OLDLOGLINE", "OLDSNAPSHOT"] {
            XCTAssertFalse(f.occurrences(of: needle).isEmpty, "fixture lacks \(needle)")
        }

        // Dry run: a report, no change anywhere.
        let before = f.allFiles().map { "\($0.0):\($0.1.count)" }.sorted()
        let dry = try await f.engine().run(dryRun: true)
        XCTAssertEqual(dry.lines.first { $0.category == "received_faxes" }?.expired, 1)
        XCTAssertEqual(dry.lines.first { $0.category == "journal" }?.expired, 1)
        XCTAssertEqual(f.allFiles().map { "\($0.0):\($0.1.count)" }.sorted(), before)
        let auditAfterDry = try await f.storage.auditRecords(limit: 10)
        XCTAssertTrue(auditAfterDry.isEmpty)

        let report = try await f.engine().run(dryRun: false)
        for needle in oldNeedles {
            XCTAssertEqual(f.occurrences(of: needle), [], "'\(needle)' still on disk after retention")
        }
        // Newer items untouched.
        let recent = try await f.storage.recentCalls(limit: 10)
        XCTAssertEqual(Set(recent.map(\.callingNumber)), ["+49 40 5550003", "+49 69 5550004"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(f.spool)/incoming/\(newID).sff"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(f.spool)/outbox/failed/o\(newID).eml"))
        let docs = try await f.storage.documents(callID: newID)
        XCTAssertEqual(docs.count, 1)
        XCTAssertFalse(f.occurrences(of: "NEWLOGLINE").isEmpty)

        // Audit: counts per category, no content.
        let audit = try await f.storage.auditRecords(limit: 10)
        let faxes = try XCTUnwrap(audit.first { $0.category == "received_faxes" })
        XCTAssertEqual(faxes.items, 1)
        XCTAssertEqual(faxes.files, 3, "SFF + failed outbox json + eml")
        XCTAssertEqual(faxes.rows, 1 + 1 + 4, "call + document + 4 history events")
        XCTAssertEqual(audit.first { $0.category == "journal" }?.items, 1)
        XCTAssertEqual(audit.first { $0.category == "logs" }?.files, 1)
        XCTAssertEqual(audit.first { $0.category == "snapshots" }?.files, 2)
        XCTAssertEqual(report.lines.first { $0.category == "sent_faxes" }?.note, "nothing stored in this category by this build")

        // A second run finds nothing more.
        let again = try await f.engine().run(dryRun: false)
        XCTAssertEqual(again.lines.reduce(0) { $0 + $1.deleted.items }, 0)
    }

    func testLegalHold_keepsItems_andExportBeforeDelete_archivesTheRest() async throws {
        let f = try await RetentionFixture()
        try await f.fax(caller: "+49 30 5550011", station: "HELD", ageDays: 200, marker: "HELDCONTENT")
        try await f.fax(caller: "030 5550012", station: "GONE", ageDays: 200, marker: "GONECONTENT")
        try await f.storage.addHold(SubjectID("0305550011", countryCode: "49")!, reason: "case 1")
        let archive = f.dir.path + "/archive"
        let report = try await f.engine(exporter: DirectoryArchiveExporter(directory: archive)).run(dryRun: false)
        let line = try XCTUnwrap(report.lines.first { $0.category == "received_faxes" })
        XCTAssertEqual(line.held, 1)
        XCTAssertEqual(line.exported, 1)
        XCTAssertEqual(line.deleted.items, 1)
        let calls = try await f.storage.recentCalls(limit: 10)
        XCTAssertEqual(calls.map(\.callingNumber), ["+49 30 5550011"])
        // The deleted one is in the archive (content and metadata), and nowhere in the spool any more.
        XCTAssertFalse(f.occurrences(of: "GONECONTENT", under: archive).isEmpty)
        XCTAssertFalse(f.occurrences(of: "5550012", under: archive).isEmpty)
        XCTAssertEqual(f.occurrences(of: "GONECONTENT", under: f.spool), [])
        XCTAssertEqual(f.occurrences(of: "5550012", under: f.spool), [])
        let audit = try await f.storage.auditRecords(limit: 5)
        XCTAssertEqual(audit.first?.held, 1)
        XCTAssertEqual(audit.first?.exported, 1)
    }

    func testExportAndErase_roundTrip_forOneSubject_keepsHeldItems() async throws {
        let f = try await RetentionFixture()
        try await f.fax(caller: "+49 30 5550021", station: "SUBJECT", ageDays: 3, marker: "SUBJECTFAX1")
        try await f.fax(caller: "030/555 00 21", station: "SUBJECT", ageDays: 2, marker: "SUBJECTFAX2")
        try await f.rejected(caller: "0049 30 5550021", ageDays: 1)
        try await f.fax(caller: "+49 30 5550022", station: "OTHER", ageDays: 2, marker: "OTHERFAX")
        let subject = try XCTUnwrap(SubjectID("+49 (0)30 555 0021", countryCode: "49"))

        // Export: everything about the subject, in an encrypted ZIP that 7z opens.
        let engine = f.engine()
        let zipPath = f.dir.path + "/export.zip"
        let pass = Passphrase.generate()
        let zip = try EncryptedZipWriter(path: zipPath, passphrase: pass)
        var items = 0
        for (category, list) in try await engine.items(about: subject) {
            for item in list {
                items += 1
                for entry in try await category.exportEntries(for: item) {
                    switch entry.source {
                    case .bytes(let b): try zip.add(name: "\(category.name)/\(entry.name)", bytes: b)
                    case .file(let p): try zip.add(name: "\(category.name)/\(entry.name)", bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: p))))
                    }
                }
            }
        }
        try zip.finish()
        XCTAssertEqual(items, 3)
        let out = f.dir.path + "/export-out"
        try runTool(sevenZip, ["x", "-p\(pass)", "-o\(out)", zipPath])
        for needle in ["SUBJECTFAX1", "SUBJECTFAX2", "+49 30 5550021", "0049 30 5550021"] {
            XCTAssertFalse(f.occurrences(of: needle, under: out).isEmpty, "export lacks \(needle)")
        }
        XCTAssertEqual(f.occurrences(of: "OTHERFAX", under: out), [])

        // Erase with one of the subject's faxes… no: with the subject under hold nothing goes; after release all goes.
        try await f.storage.addHold(subject, reason: "court case")
        let held = try await engine.erase(subject: subject, dryRun: false)
        XCTAssertEqual(held.lines.reduce(0) { $0 + $1.held }, 3)
        XCTAssertFalse(f.occurrences(of: "SUBJECTFAX1", under: f.spool).isEmpty)
        let released = try await f.storage.releaseHold(subject)
        XCTAssertTrue(released)
        let erased = try await engine.erase(subject: subject, dryRun: false)
        XCTAssertEqual(erased.lines.reduce(0) { $0 + $1.deleted.items }, 3)
        for needle in ["SUBJECTFAX1", "SUBJECTFAX2", "5550021", "SUBJECT"] {
            XCTAssertEqual(f.occurrences(of: needle, under: f.spool), [], "'\(needle)' survived erasure")
        }
        XCTAssertFalse(f.occurrences(of: "OTHERFAX", under: f.spool).isEmpty)
        let audit = try await f.storage.auditRecords(limit: 10)
        XCTAssertEqual(audit.filter { $0.action == "erase" }.reduce(0) { $0 + $1.items }, 3)
    }
}
