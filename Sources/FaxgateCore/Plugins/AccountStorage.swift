import Foundation

/// What the web pages need from storage: accounts, sessions, the audit trail, read marks and the filtered
/// journal. Part of `Storage`, so every storage plugin has it and runs the same conformance tests.
public protocol AccountStorage: Sendable {
    // MARK: Users
    /// Fails with `DuplicateUserName` when the name is taken.
    func insertUser(_ user: WebUser) async throws -> WebUser
    func updateUser(_ user: WebUser) async throws
    func user(id: Int64) async throws -> WebUser?
    func user(name: String) async throws -> WebUser?
    /// Ordered by name.
    func users() async throws -> [WebUser]
    /// Removes the user with their sessions and read marks; audit entries keep the name.
    func deleteUser(id: Int64) async throws

    // MARK: Sessions (ids stored hashed)
    func insertSession(_ session: WebSession) async throws
    func session(idHash: String) async throws -> WebSession?
    func updateSession(_ session: WebSession) async throws
    func deleteSession(idHash: String) async throws
    /// Logout everywhere; returns how many sessions ended.
    @discardableResult func deleteSessions(userID: Int64) async throws -> Int
    /// Removes sessions idle since `lastSeenBefore` or created before `createdBefore`.
    @discardableResult func purgeSessions(lastSeenBefore: Date, createdBefore: Date) async throws -> Int

    // MARK: Audit
    func appendAudit(_ entry: AuditEntry) async throws
    /// Newest first; `beforeID` pages; `actor`/`action` filter when set (action matches as a prefix).
    func auditEntries(limit: Int, beforeID: Int64?, actor: String?, action: String?) async throws -> [AuditEntry]

    // MARK: Read marks
    func markRead(callID: Int64, userID: Int64) async throws
    func readCallIDs(userID: Int64, among callIDs: [Int64]) async throws -> Set<Int64>

    // MARK: Filtered lists
    /// Newest first: startedAt, then id, descending.
    func searchCalls(_ query: CallQuery) async throws -> [CallRecord]
    func countCalls(_ query: CallQuery) async throws -> Int
    /// Newest first: createdAt, then id, descending.
    func searchJobs(_ query: JobQuery) async throws -> [FaxJob]
}

/// Versioned settings documents (the office settings the web edits; see ARCHITECTURE.md "Settings").
public protocol SettingsStorage: Sendable {
    func setting(_ key: String) async throws -> StoredSetting?
    /// Writes a new version. `expectingVersion` nil = the key must not exist yet; otherwise the stored version
    /// must equal it, or `SettingVersionConflict` is thrown.
    @discardableResult
    func putSetting(_ key: String, value: String, expectingVersion: Int?, by: String) async throws -> StoredSetting
}
