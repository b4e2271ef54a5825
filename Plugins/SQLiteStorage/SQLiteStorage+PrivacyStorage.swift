import FaxgateCore
import Foundation
import GRDB

/// The privacy capability (`PrivacyStorage`) of the embedded storage: the audit/hold tables and the categories
/// in SQLiteStorage+Retention.swift, +OutgoingRetention.swift and +Voicemails.swift.
extension SQLiteStorage: PrivacyStorage {
    public func holdDetails() async throws -> [LegalHold] {
        try await pool.read { db in
            guard try db.tableExists("legalHold") else { return [] }
            return try Row.fetchAll(db, sql: "SELECT kind, subject, reason, since FROM legalHold ORDER BY since").compactMap { r in
                SubjectID.Kind(rawValue: r["kind"]).map { LegalHold(subject: SubjectID(kind: $0, normalized: r["subject"]), reason: r["reason"], since: r["since"]) }
            }
        }
    }

    public func retentionCategories(spoolDirectory: String, countryCode: String?) -> [any RetentionCategory] {
        [
            ReceivedFaxesCategory(storage: self, spoolDirectory: spoolDirectory, countryCode: countryCode),
            JournalCategory(storage: self, spoolDirectory: spoolDirectory, countryCode: countryCode),
            SentFaxesCategory(storage: self, spoolDirectory: spoolDirectory, countryCode: countryCode),
            VoicemailsCategory(storage: self, spoolDirectory: spoolDirectory, countryCode: countryCode),
            RejectedMailsCategory(storage: self, spoolDirectory: spoolDirectory),
        ]
    }
}
