import FaxgateCore
import Foundation
import GRDB

extension SQLiteStorage {
    /// Daily limits count per key (an address, an allow-list domain, a local user), a typed column rather
    /// than a pattern over sender addresses. Rows from before count under their lowercased sender.
    static func registerJobLimitKeyMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v-job-limit-key") { db in
            try db.alter(table: "job") { t in t.add(column: "limitKey", .text) }
            try db.execute(sql: "UPDATE job SET limitKey = lower(sender) WHERE limitKey IS NULL")
            try db.create(index: "job_on_limitKey_createdAt", on: "job", columns: ["limitKey", "createdAt"])
        }
    }

    /// Which SFF page the send report shows (the document's first, not a cover or text page).
    static func registerJobDocumentPageMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v-job-document-page") { db in
            try db.alter(table: "job") { t in t.add(column: "documentPage", .integer).notNull().defaults(to: 0) }
        }
    }

    static func registerJobMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v2-jobs-and-intake") { db in
            try db.create(table: "intake") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("source", .text).notNull()
                t.column("uidValidity", .integer).notNull()
                t.column("uid", .integer).notNull()
                t.column("messageID", .text).indexed()
                t.column("receivedAt", .datetime).notNull()
                t.column("rawPath", .text).notNull()
                t.column("state", .text).notNull().indexed()
                    .check { IntakeRecord.State.allCases.map(\.rawValue).contains($0) }
                t.column("detail", .text)
                t.column("moved", .boolean).notNull().defaults(to: false)
                // The exactly-once key: a message in a mailbox generation is taken once.
                t.uniqueKey(["source", "uidValidity", "uid"])
            }
            try db.create(table: "job") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("state", .text).notNull().indexed().check { FaxJob.State.allCases.map(\.rawValue).contains($0) }
                t.column("createdAt", .datetime).notNull()
                t.column("sendAt", .datetime).notNull()
                t.column("nextAttemptAt", .datetime).notNull()
                t.column("intakeID", .integer).references("intake", onDelete: .setNull)
                t.column("sender", .text).notNull().indexed()
                t.column("senderName", .text)
                t.column("extensionName", .text).notNull()
                t.column("language", .text).notNull()
                t.column("number", .text).notNull()
                t.column("dialString", .text).notNull()
                t.column("subject", .text).notNull()
                t.column("pages", .integer).notNull().check { $0 >= 0 }
                t.column("fine", .boolean).notNull()
                t.column("sffPath", .text).notNull()
                t.column("tries", .integer).notNull()
                t.column("protocolErrors", .integer).notNull()
                t.column("lastCause", .text)
                t.column("lastText", .text)
                t.column("remoteStationID", .text)
                t.column("pagesSent", .integer).notNull()
                t.column("bitRate", .integer)
                t.column("dialedAt", .datetime)
                t.column("connectedAt", .datetime)
                t.column("endedAt", .datetime)
                t.column("requestMessageID", .text)
            }
            try db.create(table: "jobEvent") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("jobID", .integer).notNull().indexed().references("job", onDelete: .cascade)
                t.column("at", .datetime).notNull()
                t.column("text", .text).notNull()
            }
        }
    }

    public func insertJobs(_ jobs: [FaxJob], intake: IntakeRecord?, event: String) async throws -> [FaxJob] {
        try await pool.write { db in
            // Exactly one decision per order mail: another handle (the CLI's drop directory, a second node on
            // the same file) that decided it first wins, and this one creates nothing. Same contract as PostgreSQL.
            if let intake, let id = intake.id {
                let current = try String.fetchOne(db, sql: "SELECT state FROM intake WHERE id = ?", arguments: [id])
                guard current == IntakeRecord.State.fetched.rawValue else {
                    throw StorageError("intake \(id) is \(current ?? "gone"), not fetched: decided elsewhere, no jobs created")
                }
            }
            var saved: [FaxJob] = []
            for job in jobs {
                var row = JobRow(job)
                try row.insert(db)
                _ = try JobEventRow(jobID: row.id!, at: Date(), text: event).inserted(db)
                saved.append(row.job)
            }
            if let intake { try IntakeRow(intake).update(db) }
            return saved
        }
    }

    public func updateJob(_ job: FaxJob, expecting expected: FaxJob.State, event: String) async throws {
        guard let id = job.id else { throw StorageError("updateJob needs a job with an id") }
        try await pool.write { db in
            let current = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [id])
            guard current == expected.rawValue else {
                throw JobStateConflict(jobID: id, actual: current.flatMap(FaxJob.State.init(rawValue:)))
            }
            try JobRow(job).update(db)
            _ = try JobEventRow(jobID: id, at: Date(), text: event).inserted(db)
        }
    }

    public func job(id: Int64) async throws -> FaxJob? {
        try await pool.read { db in try JobRow.fetchOne(db, key: id)?.job }
    }

    public func jobs(in states: Set<FaxJob.State>) async throws -> [FaxJob] {
        try await pool.read { db in
            try JobRow.filter(states.map(\.rawValue).contains(Column("state"))).order(Column("nextAttemptAt"), Column("id")).fetchAll(db).map(\.job)
        }
    }

    public func recentJobs(limit: Int) async throws -> [FaxJob] {
        try await pool.read { db in
            // The read-only CLI may look before `serve` has upgraded an older database: nothing queued yet.
            guard try db.tableExists("job") else { return [] }
            return try JobRow.order(Column("id").desc).limit(limit).fetchAll(db).map(\.job)
        }
    }

    public func jobEvents(jobID: Int64) async throws -> [CallEvent] {
        try await pool.read { db in
            try JobEventRow.filter(Column("jobID") == jobID).order(Column("id")).fetchAll(db)
                .map { CallEvent(callID: $0.jobID, at: $0.at, text: $0.text) }
        }
    }

    public func usage(sender: String, since: Date) async throws -> (jobs: Int, pages: Int) {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS jobs, COALESCE(SUM(pages), 0) AS pages FROM job
                WHERE sender = ? COLLATE NOCASE AND createdAt >= ? AND state != 'canceled'
                """, arguments: [sender, since])
            return (row?["jobs"] ?? 0, row?["pages"] ?? 0)
        }
    }

    public func usage(limitKey: String, since: Date) async throws -> (jobs: Int, pages: Int) {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS jobs, COALESCE(SUM(pages), 0) AS pages FROM job
                WHERE limitKey = ? AND createdAt >= ? AND state != 'canceled'
                """, arguments: [limitKey, since])
            return (row?["jobs"] ?? 0, row?["pages"] ?? 0)
        }
    }

    public func recordIntake(_ record: IntakeRecord) async throws -> (record: IntakeRecord, isNew: Bool) {
        try await pool.write { db in
            if let existing = try IntakeRow.filter(Column("source") == record.source && Column("uidValidity") == record.uidValidity
                                                   && Column("uid") == record.uid).fetchOne(db) {
                return (existing.record, false)
            }
            var row = IntakeRow(record)
            try row.insert(db)
            return (row.record, true)
        }
    }

    public func updateIntake(_ record: IntakeRecord) async throws {
        try await pool.write { db in try IntakeRow(record).update(db) }
    }

    public func intakes(in states: Set<IntakeRecord.State>) async throws -> [IntakeRecord] {
        try await pool.read { db in
            try IntakeRow.filter(states.map(\.rawValue).contains(Column("state"))).order(Column("id")).fetchAll(db).map(\.record)
        }
    }

    public func intakes(source: String, movedOnServer: Bool) async throws -> [IntakeRecord] {
        try await pool.read { db in
            try IntakeRow.filter(Column("source") == source && Column("moved") == movedOnServer).order(Column("id")).fetchAll(db).map(\.record)
        }
    }

    public func intake(messageID: String) async throws -> IntakeRecord? {
        try await pool.read { db in try IntakeRow.filter(Column("messageID") == messageID).order(Column("id")).fetchOne(db)?.record }
    }
}

struct JobRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "job"
    var id: Int64?
    var state: String
    var createdAt: Date
    var sendAt: Date
    var nextAttemptAt: Date
    var intakeID: Int64?
    var sender: String
    var senderName: String?
    var extensionName: String
    var language: String
    var number: String
    var dialString: String
    var subject: String
    var pages: Int
    var fine: Bool
    var sffPath: String
    var tries: Int
    var protocolErrors: Int
    var lastCause: String?
    var lastText: String?
    var remoteStationID: String?
    var pagesSent: Int
    var bitRate: Int?
    var dialedAt: Date?
    var connectedAt: Date?
    var endedAt: Date?
    var requestMessageID: String?
    var limitKey: String?
    var documentPage: Int
    // Added by migration "v-fax-engine-details" (SQLiteStorage+EngineDetails.swift).
    var ecm: Bool?
    var engine: String?
    var compression: String?
    var ecmRetransmittedFrames: Int?
    var t30FailureKind: String?
    var t30FailureCode: Int?
    var t30FailureText: String?
    var t30FailureBitRate: Int?
    var pageStatistics: String?
    var nextMaxBitRate: Int?
    var nextECM: Bool
    // Added by migration "v-job-lease-uncertain" (SQLiteStorage+Claims.swift).
    var leaseOwner: String?
    var leaseUntil: Date?

    init(_ j: FaxJob) {
        id = j.id; state = j.state.rawValue; createdAt = j.createdAt; sendAt = j.sendAt; nextAttemptAt = j.nextAttemptAt
        intakeID = j.intakeID; sender = j.sender; senderName = j.senderName; extensionName = j.extensionName
        language = j.language; number = j.number; dialString = j.dialString; subject = j.subject; pages = j.pages
        fine = j.fine; sffPath = j.sffPath; tries = j.tries; protocolErrors = j.protocolErrors; lastCause = j.lastCause
        lastText = j.lastText; remoteStationID = j.remoteStationID; pagesSent = j.pagesSent; bitRate = j.bitRate
        dialedAt = j.dialedAt; connectedAt = j.connectedAt; endedAt = j.endedAt; requestMessageID = j.requestMessageID
        // Jobs made without a key (older callers) count under their sender, as the usage query expects.
        limitKey = j.limitKey ?? j.sender.lowercased()
        documentPage = j.documentPage
        ecm = j.ecm
        let e = EngineColumns(engine: j.engine, compression: j.compression, ecmRetransmittedFrames: j.ecmRetransmittedFrames,
                              failure: j.t30Failure, pages: j.pageStatistics)
        engine = e.engine; compression = e.compression; ecmRetransmittedFrames = e.ecmRetransmittedFrames
        t30FailureKind = e.t30FailureKind; t30FailureCode = e.t30FailureCode; t30FailureText = e.t30FailureText
        t30FailureBitRate = e.t30FailureBitRate; pageStatistics = e.pageStatistics
        nextMaxBitRate = j.nextModem.maxBitRate; nextECM = j.nextModem.ecm
        leaseOwner = j.leaseOwner; leaseUntil = j.leaseUntil
    }

    var job: FaxJob {
        var j = FaxJob(state: FaxJob.State(rawValue: state) ?? .failed, createdAt: createdAt, sendAt: sendAt, intakeID: intakeID,
                       sender: sender, senderName: senderName, extensionName: extensionName, language: language, number: number,
                       dialString: dialString, subject: subject, pages: pages, fine: fine, sffPath: sffPath,
                       requestMessageID: requestMessageID)
        j.id = id; j.nextAttemptAt = nextAttemptAt; j.tries = tries; j.protocolErrors = protocolErrors; j.lastCause = lastCause
        j.lastText = lastText; j.remoteStationID = remoteStationID; j.pagesSent = pagesSent; j.bitRate = bitRate
        j.dialedAt = dialedAt; j.connectedAt = connectedAt; j.endedAt = endedAt; j.limitKey = limitKey
        j.documentPage = documentPage
        let e = EngineColumns(engine: engine, compression: compression, ecmRetransmittedFrames: ecmRetransmittedFrames,
                              t30FailureKind: t30FailureKind, t30FailureCode: t30FailureCode, t30FailureText: t30FailureText,
                              t30FailureBitRate: t30FailureBitRate, pageStatistics: pageStatistics)
        j.ecm = ecm; j.engine = e.engineKind; j.compression = e.compressionKind; j.ecmRetransmittedFrames = ecmRetransmittedFrames
        j.t30Failure = e.failure; j.pageStatistics = e.pages
        j.nextModem = ModemSettings(maxBitRate: nextMaxBitRate, ecm: nextECM)
        j.leaseOwner = leaseOwner; j.leaseUntil = leaseUntil
        return j
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

struct JobEventRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "jobEvent"
    var id: Int64?
    var jobID: Int64
    var at: Date
    var text: String
    init(jobID: Int64, at: Date, text: String) { self.jobID = jobID; self.at = at; self.text = text }
}

struct IntakeRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "intake"
    var id: Int64?
    var source: String
    var uidValidity: Int64
    var uid: Int64
    var messageID: String?
    var receivedAt: Date
    var rawPath: String
    var state: String
    var detail: String?
    var moved: Bool
    // Migration "intake-reply-disposition-v1" (SQLiteStorage+IntakeReplies.swift).
    var reply: String?
    var replyAddress: String?
    var decidedAt: Date?
    var adminAlert: Bool
    var digestID: String?

    init(_ r: IntakeRecord) {
        id = r.id; source = r.source; uidValidity = r.uidValidity; uid = r.uid; messageID = r.messageID; receivedAt = r.receivedAt
        rawPath = r.rawPath; state = r.state.rawValue; detail = r.detail; moved = r.moved
        reply = r.reply?.rawValue; replyAddress = r.replyAddress; decidedAt = r.decidedAt; adminAlert = r.adminAlert; digestID = r.digestID
    }

    var record: IntakeRecord {
        var r = IntakeRecord(source: source, uidValidity: uidValidity, uid: uid, messageID: messageID, receivedAt: receivedAt,
                             rawPath: rawPath, state: IntakeRecord.State(rawValue: state) ?? .fetched)
        r.id = id; r.detail = detail; r.moved = moved
        r.reply = reply.flatMap(IntakeRecord.ReplyDisposition.init(rawValue:)); r.replyAddress = replyAddress; r.decidedAt = decidedAt
        r.adminAlert = adminAlert; r.digestID = digestID
        return r
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
