import FaxgateCore
import Foundation
import PostgresNIO

// The audit trail of retention, legal holds, retention categories over rows and documents, VACUUM. (PRIVACY helper)
extension PostgresStorage: PrivacyStorage {
    static var privacyMigrations: [PostgresMigration] { [] }

    public func migratePrivacy() async throws { try await migrate() }
    public func holdDetails() async throws -> [LegalHold] { throw StorageError("postgres: not implemented") }
    public func statistics() async throws -> [String: Int] { throw StorageError("postgres: not implemented") }
    public func storedDataKinds() async throws -> Set<String> { throw StorageError("postgres: not implemented") }
    public func retentionCategories(spoolDirectory: String, countryCode: String?) -> [any RetentionCategory] { [] }

    public func append(_ record: AuditRecord) async throws { throw StorageError("postgres: not implemented") }
    public func auditRecords(limit: Int) async throws -> [AuditRecord] { throw StorageError("postgres: not implemented") }
    public func holds() async throws -> [SubjectID] { throw StorageError("postgres: not implemented") }
    public func addHold(_ subject: SubjectID, reason: String) async throws { throw StorageError("postgres: not implemented") }
    public func releaseHold(_ subject: SubjectID) async throws -> Bool { throw StorageError("postgres: not implemented") }
}
