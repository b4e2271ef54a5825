import Foundation

/// Records and document blobs. The embedded default is SQLite (Plugins/SQLiteStorage); a PostgreSQL
/// plugin serves installations with several nodes. Every implementation runs the shared conformance test.
public protocol Storage: Sendable {
    /// Creates or upgrades the schema. Called once before anything else.
    func migrate() async throws
    /// Inserts a new call and returns it with its id.
    func insertCall(_ record: CallRecord, event: String) async throws -> CallRecord
    /// Writes the record and a history event in one transaction.
    func updateCall(_ record: CallRecord, event: String) async throws
    func call(id: Int64) async throws -> CallRecord?
    /// Newest first.
    func recentCalls(limit: Int) async throws -> [CallRecord]
    func calls(in states: Set<CallRecord.State>) async throws -> [CallRecord]
    func events(callID: Int64) async throws -> [CallEvent]
    func putDocument(_ document: StoredDocument) async throws
    func documents(callID: Int64) async throws -> [StoredDocument]
}

public struct StorageError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
