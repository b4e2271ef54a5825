import FaxgateCore
import Foundation
import Logging
import SQLiteStorage
import TestSupport
import XCTest

/// Sent faxes and rejected mails expire like received faxes: rows and every derived file, nothing left.
final class OutgoingRetentionTests: XCTestCase {
    func job(_ f: RetentionFixture, number: String, sender: String, ageDays: Double, state: FaxJob.State, marker: String) async throws -> FaxJob {
        for sub in ["outgoing", "intake", "outbox/sent"] {
            try FileManager.default.createDirectory(atPath: f.spool + "/" + sub, withIntermediateDirectories: true)
        }
        let created = Date().addingTimeInterval(-ageDays * f.day)
        let raw = "\(f.spool)/intake/faxin-1-\(marker).eml"
        try "From: \(sender)\r\nTo: \(number)@fax.example.com\r\nSubject: ORDER-\(marker)\r\n\r\nbody".write(toFile: raw, atomically: true, encoding: .utf8)
        var intake = try await f.storage.recordIntake(IntakeRecord(source: "faxin", uidValidity: 1, uid: Int64(abs(marker.hashValue % 100_000)),
                                                                   messageID: "<\(marker)@x>", receivedAt: created, rawPath: raw)).record
        intake.state = .accepted
        let sff = "\(f.spool)/outgoing/intake-\(intake.id!).sff"
        try Data("SFF-\(marker)".utf8).write(to: URL(fileURLWithPath: sff))
        var j = FaxJob(state: .ready, createdAt: created, intakeID: intake.id, sender: sender, senderName: nil, extensionName: "Empfang",
                       language: "de", number: number, dialString: "0" + number.dropFirst(3), subject: "ORDER-\(marker)", pages: 1,
                       fine: true, sffPath: sff, requestMessageID: "<\(marker)@x>")
        j = try await f.storage.insertJobs([j], intake: intake, event: "queued for \(number)").first!
        if state != .ready {
            var done = j
            done.state = state
            done.remoteStationID = "REMOTE-\(marker)"
            try await f.storage.updateJob(done, expecting: .ready, event: "sent to \(number)")
            try "Subject: report \(marker)".write(toFile: "\(f.spool)/outbox/failed/job-\(j.id!)-done.eml", atomically: true, encoding: .utf8)
            FileManager.default.createFile(atPath: "\(f.spool)/outbox/sent/job-\(j.id!)-done", contents: nil)
            return done
        }
        return j
    }

    func rejectedMail(_ f: RetentionFixture, sender: String, ageDays: Double, marker: String) async throws -> IntakeRecord {
        try FileManager.default.createDirectory(atPath: f.spool + "/rejected", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: f.spool + "/outbox/sent", withIntermediateDirectories: true)
        var r = try await f.storage.recordIntake(IntakeRecord(source: "faxin", uidValidity: 2, uid: Int64(abs(marker.hashValue % 100_000)),
                                                              messageID: "<r-\(marker)@x>", receivedAt: Date().addingTimeInterval(-ageDays * f.day),
                                                              rawPath: "")).record
        r.rawPath = "\(f.spool)/rejected/\(r.id!).eml"
        try "From: Someone <\(sender)>\r\nSubject: REJ-\(marker)\r\n\r\nsecret \(marker)".write(toFile: r.rawPath, atomically: true, encoding: .utf8)
        r.state = .rejected
        r.detail = "not allowed"
        try await f.storage.updateIntake(r)
        FileManager.default.createFile(atPath: "\(f.spool)/outbox/sent/refusal-\(r.id!)", contents: nil)
        return r
    }

    func engine(_ f: RetentionFixture) -> RetentionEngine {
        var settings = f.config.retention
        settings.days["sent_faxes"] = 90
        settings.days["rejected_mails"] = 30
        return RetentionEngine(
            categories: [SentFaxesCategory(storage: f.storage, spoolDirectory: f.spool, countryCode: "49"),
                         RejectedMailsCategory(storage: f.storage, spoolDirectory: f.spool)],
            settings: settings, configHolds: [], holdStore: f.storage, audit: f.storage, exporter: nil, logger: Logger(label: "t"))
    }

    func testSentFaxesAndRejectedMails_expireWithAllTheirFiles_queuedAndNewerStay() async throws {
        let f = try await RetentionFixture()
        let old = try await job(f, number: "+49305551111", sender: "oldsender@example.com", ageDays: 120, state: .done, marker: "OLDJOB")
        let queued = try await job(f, number: "+49305552222", sender: "waiting@example.com", ageDays: 120, state: .ready, marker: "QUEUEDJOB")
        let new = try await job(f, number: "+49305553333", sender: "newsender@example.com", ageDays: 5, state: .failed, marker: "NEWJOB")
        _ = try await rejectedMail(f, sender: "spammer@example.org", ageDays: 40, marker: "OLDREJECT")
        let newReject = try await rejectedMail(f, sender: "recent@example.org", ageDays: 2, marker: "NEWREJECT")

        let oldNeedles = ["5551111", "oldsender@example.com", "OLDJOB", "spammer@example.org", "OLDREJECT", "job-\(old.id!)-done"]
        for needle in ["5551111", "OLDJOB", "OLDREJECT"] { XCTAssertFalse(f.occurrences(of: needle).isEmpty, "fixture lacks \(needle)") }

        let report = try await engine(f).run(dryRun: false)
        for needle in oldNeedles {
            XCTAssertEqual(f.occurrences(of: needle), [], "'\(needle)' still on disk after retention")
        }
        // A job still in the queue is never expired under the queue's feet; newer ones stay.
        let remainingQueued = try await f.storage.job(id: queued.id!)
        XCTAssertEqual(remainingQueued?.state, .ready)
        let remainingNew = try await f.storage.job(id: new.id!)
        XCTAssertNotNil(remainingNew)
        XCTAssertTrue(FileManager.default.fileExists(atPath: new.sffPath))
        XCTAssertTrue(FileManager.default.fileExists(atPath: newReject.rawPath))
        XCTAssertFalse(f.occurrences(of: "NEWREJECT").isEmpty)

        let sent = try XCTUnwrap(report.lines.first { $0.category == "sent_faxes" })
        XCTAssertEqual(sent.deleted.items, 1)
        XCTAssertEqual(sent.deleted.files, 4, "report copy + sent marker + SFF + order mail")
        let rejected = try XCTUnwrap(report.lines.first { $0.category == "rejected_mails" })
        XCTAssertEqual(rejected.deleted.items, 1)
        XCTAssertEqual(rejected.deleted.files, 2, "raw mail + refusal marker")
        let audit = try await f.storage.auditRecords(limit: 10)
        XCTAssertEqual(Set(audit.map(\.category)), ["sent_faxes", "rejected_mails"])
    }

    func testVoicemails_expireWithRecordingAndMailCopies_newerStay() async throws {
        let f = try await RetentionFixture()
        func voicemail(caller: String, ageDays: Double, marker: String) async throws -> Int64 {
            var call = CallRecord(kind: .voice, state: .receiving, startedAt: Date().addingTimeInterval(-ageDays * f.day),
                                  callingNumber: caller, calledNumber: "100", extensionName: "Empfang")
            call = try await f.storage.insertCall(call, event: "voice call from \(caller)")
            let id = call.id!
            call.spoolPath = "\(f.spool)/incoming/\(id).alaw"
            try Data("ALAW-\(marker)".utf8).write(to: URL(fileURLWithPath: call.spoolPath!))
            call.state = .mailed
            try await f.storage.updateCall(call, event: "mailed")
            try await f.storage.putDocument(StoredDocument(callID: id, kind: "wav", filename: "vm-\(caller).wav", bytes: Array("RIFF-\(marker)".utf8)))
            return id
        }
        let old = try await voicemail(caller: "+49 30 5557777", ageDays: 100, marker: "OLDVOICE")
        let new = try await voicemail(caller: "+49 30 5558888", ageDays: 3, marker: "NEWVOICE")
        var settings = f.config.retention
        settings.days["voicemails"] = 90
        let engine = RetentionEngine(
            categories: [VoicemailsCategory(storage: f.storage, spoolDirectory: f.spool, countryCode: "49")],
            settings: settings, configHolds: [], holdStore: f.storage, audit: f.storage, exporter: nil, logger: Logger(label: "t"))
        let report = try await engine.run(dryRun: false)
        for needle in ["5557777", "OLDVOICE", "incoming/\(old).alaw"] {
            XCTAssertEqual(f.occurrences(of: needle), [], "'\(needle)' still on disk after retention")
        }
        XCTAssertFalse(f.occurrences(of: "NEWVOICE").isEmpty)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(f.spool)/incoming/\(new).alaw"))
        let line = try XCTUnwrap(report.lines.first { $0.category == "voicemails" })
        XCTAssertEqual(line.deleted.items, 1)
        XCTAssertEqual(line.deleted.files, 1)
    }

    func testSubjectsOfSentFaxes_areTheNumberAndTheSender() async throws {
        let f = try await RetentionFixture()
        _ = try await job(f, number: "+49305554444", sender: "alice@example.com", ageDays: 1, state: .done, marker: "SUBJ")
        let category = SentFaxesCategory(storage: f.storage, spoolDirectory: f.spool, countryCode: "49")
        let byNumber = try await category.items(about: SubjectID("030 5554444", countryCode: "49")!)
        let bySender = try await category.items(about: SubjectID("Alice@example.com", countryCode: "49")!)
        XCTAssertEqual(byNumber.count, 1)
        XCTAssertEqual(bySender.count, 1)
    }
}
