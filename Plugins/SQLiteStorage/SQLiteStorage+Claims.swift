import FaxgateCore
import Foundation
import GRDB

// Claims and leases (issue 11). SQLite has one writer and one node, but implements the same contract, so the
// send queue has one code path and the conformance suite checks both plugins alike. Each call is one write
// transaction: GRDB's pool serializes writers, so two handles on one file never claim the same row.
extension SQLiteStorage {
    /// Lease columns, and a state CHECK that admits `uncertain`. SQLite cannot alter a CHECK constraint, so the
    /// table is rebuilt (SQLite's documented 12-step way): same columns, ids, indexes and foreign keys. GRDB runs a
    /// migration with foreign keys off and checks them afterwards, so dropping the old table cascades nothing.
    static func registerJobLeaseMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v-job-lease-uncertain") { db in
            guard let tableSQL = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'job'") else {
                throw StorageError("migration v-job-lease-uncertain: the job table is missing")
            }
            // The state list is written out here (not FaxJob.State.allCases) so the migration stays what it was.
            let states = ["ready", "active", "deferred", "done", "failed", "canceled", "uncertain"]
            let newCheck = "CHECK (\"state\" IN (" + states.map { "'\($0)'" }.joined(separator: ", ") + "))"
            guard let checkRange = tableSQL.range(of: #"CHECK \("state" IN \([^)]*\)\)"#, options: .regularExpression),
                  tableSQL.hasPrefix(#"CREATE TABLE "job""#) else {
                throw StorageError("migration v-job-lease-uncertain: unexpected job table definition")
            }
            var newSQL = tableSQL
            newSQL.replaceSubrange(checkRange, with: newCheck)
            newSQL.replaceSubrange(newSQL.range(of: #"CREATE TABLE "job""#)!, with: #"CREATE TABLE "job_rebuild""#)
            let indexSQL = try String.fetchAll(db, sql: """
                SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = 'job' AND sql IS NOT NULL
                """)
            // AUTOINCREMENT: ids of deleted jobs are never reused, also after the rebuild.
            let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'job'")
            try db.execute(sql: newSQL)
            try db.execute(sql: #"INSERT INTO "job_rebuild" SELECT * FROM "job""#)
            try db.execute(sql: #"DROP TABLE "job""#)
            try db.execute(sql: #"ALTER TABLE "job_rebuild" RENAME TO "job""#)
            for sql in indexSQL { try db.execute(sql: sql) }
            if let sequence {
                try db.execute(sql: "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'job'", arguments: [sequence])
            }
            try db.alter(table: "job") { t in
                t.add(column: "leaseOwner", .text)
                t.add(column: "leaseUntil", .datetime)
            }
            // The sweep for dead nodes looks at active jobs by lease end.
            try db.create(index: "job_on_state_leaseUntil", on: "job", columns: ["state", "leaseUntil"])
        }
    }

    public func claimJobs(node: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [FaxJob] {
        guard limit > 0 else { return [] }
        return try await pool.write { db in
            // One destination, one call: numbers with an active job (on any node) are skipped.
            var busy = Set(try String.fetchAll(db, sql: "SELECT number FROM job WHERE state = 'active'"))
            let due = try JobRow.fetchAll(db, sql: """
                SELECT * FROM job WHERE state IN ('ready', 'deferred') AND MAX(sendAt, nextAttemptAt) <= ?
                ORDER BY MAX(sendAt, nextAttemptAt), id
                """, arguments: [now])
            var claimed: [FaxJob] = []
            for row in due where claimed.count < limit {
                var job = row.job
                guard let id = job.id, !busy.contains(job.number) else { continue }
                job.state = .active
                job.tries += 1
                job.dialedAt = now
                job.leaseOwner = node
                job.leaseUntil = leaseUntil
                try JobRow(job).update(db)
                _ = try JobEventRow(jobID: id, at: now, text: "dialling \(job.dialString) (try \(job.tries)) on \(node)").inserted(db)
                busy.insert(job.number)
                claimed.append(try JobRow.fetchOne(db, key: id)?.job ?? job)
            }
            return claimed
        }
    }

    public func renewLeases(node: String, jobIDs: [Int64], until: Date) async throws -> Set<Int64> {
        guard !jobIDs.isEmpty else { return [] }
        return try await pool.write { db in
            let ids = jobIDs.map { "\($0)" }.joined(separator: ",")  // Int64s: no text from outside
            let held = try Int64.fetchAll(db, sql: """
                SELECT id FROM job WHERE id IN (\(ids)) AND state = 'active' AND leaseOwner = ?
                """, arguments: [node])
            guard !held.isEmpty else { return [] }
            try db.execute(sql: "UPDATE job SET leaseUntil = ? WHERE id IN (\(held.map { "\($0)" }.joined(separator: ",")))",
                           arguments: [until])
            return Set(held)
        }
    }

    public func expireLeases(now: Date, node: String?, event: String) async throws -> [FaxJob] {
        try await pool.write { db in
            // An active job without an owner or lease end (a row from before leases) belongs to nobody: expired too.
            let rows: [JobRow]
            if let node {
                rows = try JobRow.fetchAll(db, sql: """
                    SELECT * FROM job WHERE state = 'active' AND (leaseOwner = ? OR leaseOwner IS NULL OR leaseUntil IS NULL) ORDER BY id
                    """, arguments: [node])
            } else {
                rows = try JobRow.fetchAll(db, sql: """
                    SELECT * FROM job WHERE state = 'active' AND (leaseUntil IS NULL OR leaseUntil < ?) ORDER BY id
                    """, arguments: [now])
            }
            var expired: [FaxJob] = []
            for row in rows {
                var job = row.job
                guard let id = job.id else { continue }
                job.state = .uncertain
                job.leaseOwner = nil
                job.leaseUntil = nil
                try JobRow(job).update(db)
                _ = try JobEventRow(jobID: id, at: now, text: event).inserted(db)
                expired.append(job)
            }
            return expired
        }
    }

    /// The spool file is the document: one machine, one spool.
    public func jobDocument(_ job: FaxJob) async throws -> [UInt8]? {
        FileManager.default.contents(atPath: job.sffPath).map { [UInt8]($0) }
    }

    public func intakeMessage(_ record: IntakeRecord) async throws -> [UInt8]? {
        FileManager.default.contents(atPath: record.rawPath).map { [UInt8]($0) }
    }
}
