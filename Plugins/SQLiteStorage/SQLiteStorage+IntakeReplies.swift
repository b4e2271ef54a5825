import FaxgateCore
import Foundation
import GRDB

/// What became of refusal replies: typed columns, so the per-recipient limit and the admin digest survive a
/// restart and never depend on matching the detail text.
extension SQLiteStorage {
    static func registerIntakeReplyMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("intake-reply-disposition-v1") { db in
            try db.alter(table: "intake") { t in
                t.add(column: "reply", .text)
                t.add(column: "replyAddress", .text)
                t.add(column: "decidedAt", .datetime)
                t.add(column: "adminAlert", .boolean).notNull().defaults(to: false)
                t.add(column: "digestID", .text)
            }
            try db.create(index: "intake_reply_address", on: "intake", columns: ["replyAddress", "decidedAt"])
            try db.create(index: "intake_digest", on: "intake", columns: ["digestID"])
        }
    }

    public func repliesSent(to address: String, since: Date) async throws -> Int {
        try await pool.read { db in
            try IntakeRow.filter(Column("replyAddress") == address.lowercased() && Column("reply") == IntakeRecord.ReplyDisposition.sent.rawValue
                                 && Column("decidedAt") >= since).fetchCount(db)
        }
    }

    public func undigestedRefusals() async throws -> [IntakeRecord] {
        try await pool.read { db in
            try IntakeRow.filter(Column("digestID") == nil && (
                [IntakeRecord.ReplyDisposition.suppressed.rawValue, IntakeRecord.ReplyDisposition.rateLimited.rawValue].contains(Column("reply"))
                    || Column("adminAlert") == true))
                .order(Column("id")).fetchAll(db).map(\.record)
        }
    }

    public func markDigested(_ ids: [Int64], digestID: String) async throws {
        guard !ids.isEmpty else { return }
        try await pool.write { db in
            try IntakeRow.filter(ids.contains(Column("id"))).updateAll(db, Column("digestID").set(to: digestID))
        }
    }

    public func digestSent(_ digestID: String) async throws -> Bool {
        try await pool.read { db in try IntakeRow.filter(Column("digestID") == digestID).fetchCount(db) > 0 }
    }

    public func recentIntakes(limit: Int) async throws -> [IntakeRecord] {
        try await pool.read { db in try IntakeRow.order(Column("id").desc).limit(limit).fetchAll(db).map(\.record) }
    }
}
