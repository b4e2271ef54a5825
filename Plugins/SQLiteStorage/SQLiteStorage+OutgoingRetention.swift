import FaxgateCore
import Foundation
import GRDB

/// Retention for the mail → fax side: sent faxes (jobs with their document, the order mail and the reports'
/// outbox traces) and rejected mails (the raw mail and the refusal's traces).
extension SQLiteStorage {
    func finishedJobs(before cutoff: Date?) async throws -> [FaxJob] {
        try await pool.read { db in
            var request = JobRow.filter(["done", "failed", "canceled"].contains(Column("state")))
            if let cutoff { request = request.filter(Column("createdAt") < cutoff) }
            return try request.order(Column("id")).fetchAll(db).map(\.job)
        }
    }

    func decidedIntakes(states: [IntakeRecord.State], before cutoff: Date?) async throws -> [IntakeRecord] {
        try await pool.read { db in
            var request = IntakeRow.filter(states.map(\.rawValue).contains(Column("state")))
            if let cutoff { request = request.filter(Column("receivedAt") < cutoff) }
            return try request.order(Column("id")).fetchAll(db).map(\.record)
        }
    }

    /// Deletes jobs; an intake row (and its raw mail, returned for removal) goes with its last job.
    func deleteJobs(_ ids: [Int64]) async throws -> (rows: Int, orphanFiles: [String]) {
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            var rows = 0
            var files: [String] = []
            try db.inTransaction {
                for id in ids {
                    let intakeID = try Int64.fetchOne(db, sql: "SELECT intakeID FROM job WHERE id = ?", arguments: [id])
                    let sff = try String.fetchOne(db, sql: "SELECT sffPath FROM job WHERE id = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM jobEvent WHERE jobID = ?", arguments: [id]); rows += db.changesCount
                    try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id]); rows += db.changesCount
                    // The document is shared by all recipients of one mail: it goes with the last of them.
                    if let sff, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE sffPath = ?", arguments: [sff]) == 0 {
                        files.append(sff)
                    }
                    if let intakeID, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE intakeID = ?", arguments: [intakeID]) == 0 {
                        if let raw = try String.fetchOne(db, sql: "SELECT rawPath FROM intake WHERE id = ?", arguments: [intakeID]) {
                            files.append(raw)
                        }
                        try db.execute(sql: "DELETE FROM intake WHERE id = ?", arguments: [intakeID]); rows += db.changesCount
                    }
                }
                return .commit
            }
            return (rows, files)
        }
    }

    func deleteIntakes(_ ids: [Int64]) async throws -> Int {
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            var rows = 0
            try db.inTransaction {
                for id in ids { try db.execute(sql: "DELETE FROM intake WHERE id = ?", arguments: [id]); rows += db.changesCount }
                return .commit
            }
            return rows
        }
    }
}

/// Traces a mail leaves in the outbox after delivery (idempotency markers) or after giving up (failed copies).
enum OutboxTraces {
    static func files(prefix: String, spoolDirectory: String) -> [String] {
        var out: [String] = []
        for dir in ["outbox/sent", "outbox/failed", "outbox"] {
            let path = "\(spoolDirectory)/\(dir)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                where name == prefix || name.hasPrefix(prefix + "-") || name.hasPrefix(prefix + ".") {
                out.append("\(path)/\(name)")
            }
        }
        return out
    }
}

public struct SentFaxesCategory: RetentionCategory {
    public let name = "sent_faxes"
    let storage: SQLiteStorage
    let spoolDirectory: String
    let countryCode: String?

    public init(storage: SQLiteStorage, spoolDirectory: String, countryCode: String?) {
        self.storage = storage; self.spoolDirectory = spoolDirectory; self.countryCode = countryCode
    }

    func item(_ job: FaxJob) -> RetentionItem {
        let subjects = [SubjectID(job.number, countryCode: countryCode), SubjectID(job.sender, countryCode: countryCode)].compactMap { $0 }
        return RetentionItem(category: name, id: "job-\(job.id ?? 0)", createdAt: job.createdAt, subjects: subjects,
                             files: OutboxTraces.files(prefix: "job-\(job.id ?? 0)", spoolDirectory: spoolDirectory))
    }

    public func expired(before cutoff: Date) async throws -> [RetentionItem] {
        // Only finished jobs: a job still queued or on the line expires on a later run.
        try await storage.finishedJobs(before: cutoff).map(item)
    }

    public func items(about subject: SubjectID) async throws -> [RetentionItem] {
        try await storage.finishedJobs(before: nil).map(item).filter { $0.subjects.contains(subject) }
    }

    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts {
        var counts = DeletionCounts()
        var ids: [Int64] = []
        for item in items {
            guard let id = Int64(item.id.dropFirst("job-".count)) else { continue }
            for file in Set(item.files + OutboxTraces.files(prefix: item.id, spoolDirectory: spoolDirectory)).sorted()
                where FileManager.default.fileExists(atPath: file) {
                counts.bytes += try SecureFileRemoval.remove(file)
                counts.files += 1
            }
            ids.append(id)
            counts.items += 1
        }
        let (rows, orphans) = try await storage.deleteJobs(ids)
        counts.rows = rows
        for file in orphans where FileManager.default.fileExists(atPath: file) {
            counts.bytes += try SecureFileRemoval.remove(file)
            counts.files += 1
        }
        return counts
    }

    public func finishDeletion() async throws { try await storage.compactAfterDeletion() }

    public func exportEntries(for item: RetentionItem) async throws -> [ExportEntry] {
        guard let id = Int64(item.id.dropFirst("job-".count)), let job = try await storage.job(id: id) else { return [] }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var entries = [ExportEntry(name: "\(item.id)/job.json", source: .bytes(Array(try encoder.encode(job))))]
        let events = try await storage.jobEvents(jobID: id).map { ["at": ISO8601DateFormatter().string(from: $0.at), "text": $0.text] }
        entries.append(ExportEntry(name: "\(item.id)/history.json", source: .bytes(Array(try encoder.encode(events)))))
        if FileManager.default.fileExists(atPath: job.sffPath) {
            entries.append(ExportEntry(name: "\(item.id)/document.sff", source: .file(job.sffPath)))
        }
        return entries
    }
}

public struct RejectedMailsCategory: RetentionCategory {
    public let name = "rejected_mails"
    let storage: SQLiteStorage
    let spoolDirectory: String

    public init(storage: SQLiteStorage, spoolDirectory: String) { self.storage = storage; self.spoolDirectory = spoolDirectory }

    func item(_ r: IntakeRecord) -> RetentionItem {
        // The sender is only in the stored mail; read its From line to know whom the item is about.
        let sender = FileManager.default.contents(atPath: r.rawPath).flatMap { Self.fromAddress(in: [UInt8]($0.prefix(64 * 1024))) }
        return RetentionItem(category: name, id: "intake-\(r.id ?? 0)", createdAt: r.receivedAt,
                             subjects: sender.flatMap { SubjectID($0, countryCode: nil) }.map { [$0] } ?? [],
                             files: [r.rawPath] + OutboxTraces.files(prefix: "refusal-\(r.id ?? 0)", spoolDirectory: spoolDirectory))
    }

    public func expired(before cutoff: Date) async throws -> [RetentionItem] {
        try await storage.decidedIntakes(states: [.rejected, .ignored], before: cutoff).map(item)
    }

    public func items(about subject: SubjectID) async throws -> [RetentionItem] {
        guard subject.kind == .email else { return [] }
        return try await storage.decidedIntakes(states: [.rejected, .ignored], before: nil).map(item).filter { $0.subjects.contains(subject) }
    }

    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts {
        var counts = DeletionCounts()
        var ids: [Int64] = []
        for item in items {
            guard let id = Int64(item.id.dropFirst("intake-".count)) else { continue }
            for file in Set(item.files).sorted() where FileManager.default.fileExists(atPath: file) {
                counts.bytes += try SecureFileRemoval.remove(file)
                counts.files += 1
            }
            ids.append(id)
            counts.items += 1
        }
        counts.rows = try await storage.deleteIntakes(ids)
        return counts
    }

    public func finishDeletion() async throws { try await storage.compactAfterDeletion() }

    static func fromAddress(in raw: [UInt8]) -> String? {
        RawMailHeaders.value(of: "From", in: raw).flatMap { MailboxSyntax.address(in: $0)?.address }
    }
}
