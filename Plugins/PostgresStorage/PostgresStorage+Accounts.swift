import FaxgateCore
import Foundation
import PostgresNIO

// Web users, sessions, audit, read marks, the filtered journal and settings documents. (ACCOUNTS helper)
extension PostgresStorage {
    static var accountMigrations: [PostgresMigration] { [] }

    public func insertUser(_ user: WebUser) async throws -> WebUser { throw StorageError("postgres: not implemented") }
    public func updateUser(_ user: WebUser) async throws { throw StorageError("postgres: not implemented") }
    public func user(id: Int64) async throws -> WebUser? { throw StorageError("postgres: not implemented") }
    public func user(name: String) async throws -> WebUser? { throw StorageError("postgres: not implemented") }
    public func users() async throws -> [WebUser] { throw StorageError("postgres: not implemented") }
    public func deleteUser(id: Int64) async throws { throw StorageError("postgres: not implemented") }

    public func insertSession(_ session: WebSession) async throws { throw StorageError("postgres: not implemented") }
    public func session(idHash: String) async throws -> WebSession? { throw StorageError("postgres: not implemented") }
    public func updateSession(_ session: WebSession) async throws { throw StorageError("postgres: not implemented") }
    public func deleteSession(idHash: String) async throws { throw StorageError("postgres: not implemented") }
    @discardableResult public func deleteSessions(userID: Int64) async throws -> Int { throw StorageError("postgres: not implemented") }
    @discardableResult public func purgeSessions(lastSeenBefore: Date, createdBefore: Date) async throws -> Int { throw StorageError("postgres: not implemented") }

    public func appendAudit(_ entry: AuditEntry) async throws { throw StorageError("postgres: not implemented") }
    public func auditEntries(limit: Int, beforeID: Int64?, actor: String?, action: String?) async throws -> [AuditEntry] { throw StorageError("postgres: not implemented") }

    public func markRead(callID: Int64, userID: Int64) async throws { throw StorageError("postgres: not implemented") }
    public func readCallIDs(userID: Int64, among callIDs: [Int64]) async throws -> Set<Int64> { throw StorageError("postgres: not implemented") }

    public func searchCalls(_ query: CallQuery) async throws -> [CallRecord] { throw StorageError("postgres: not implemented") }
    public func countCalls(_ query: CallQuery) async throws -> Int { throw StorageError("postgres: not implemented") }
    public func searchJobs(_ query: JobQuery) async throws -> [FaxJob] { throw StorageError("postgres: not implemented") }

    public func setting(_ key: String) async throws -> StoredSetting? { throw StorageError("postgres: not implemented") }
    @discardableResult
    public func putSetting(_ key: String, value: String, expectingVersion: Int?, by: String) async throws -> StoredSetting { throw StorageError("postgres: not implemented") }
}
