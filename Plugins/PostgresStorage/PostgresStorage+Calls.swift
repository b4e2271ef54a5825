import FaxgateCore
import Foundation
import PostgresNIO

// Calls, their history and documents; the mail intake ledger and refusal replies. (CALLS helper)
extension PostgresStorage {
    static var callMigrations: [PostgresMigration] { [] }

    public func insertCall(_ record: CallRecord, event: String) async throws -> CallRecord { throw StorageError("postgres: insertCall not implemented") }
    public func updateCall(_ record: CallRecord, event: String) async throws { throw StorageError("postgres: not implemented") }
    public func call(id: Int64) async throws -> CallRecord? { throw StorageError("postgres: not implemented") }
    public func recentCalls(limit: Int) async throws -> [CallRecord] { throw StorageError("postgres: not implemented") }
    public func calls(in states: Set<CallRecord.State>) async throws -> [CallRecord] { throw StorageError("postgres: not implemented") }
    public func events(callID: Int64) async throws -> [CallEvent] { throw StorageError("postgres: not implemented") }
    public func putDocument(_ document: StoredDocument) async throws { throw StorageError("postgres: not implemented") }
    public func documents(callID: Int64) async throws -> [StoredDocument] { throw StorageError("postgres: not implemented") }

    public func recordIntake(_ record: IntakeRecord) async throws -> (record: IntakeRecord, isNew: Bool) { throw StorageError("postgres: not implemented") }
    public func updateIntake(_ record: IntakeRecord) async throws { throw StorageError("postgres: not implemented") }
    public func intakes(in states: Set<IntakeRecord.State>) async throws -> [IntakeRecord] { throw StorageError("postgres: not implemented") }
    public func intakes(source: String, movedOnServer: Bool) async throws -> [IntakeRecord] { throw StorageError("postgres: not implemented") }
    public func intake(messageID: String) async throws -> IntakeRecord? { throw StorageError("postgres: not implemented") }
    public func intakeMessage(_ record: IntakeRecord) async throws -> [UInt8]? { throw StorageError("postgres: not implemented") }

    public func repliesSent(to address: String, since: Date) async throws -> Int { throw StorageError("postgres: not implemented") }
    public func undigestedRefusals() async throws -> [IntakeRecord] { throw StorageError("postgres: not implemented") }
    public func markDigested(_ ids: [Int64], digestID: String) async throws { throw StorageError("postgres: not implemented") }
    public func digestSent(_ digestID: String) async throws -> Bool { throw StorageError("postgres: not implemented") }
    public func recentIntakes(limit: Int) async throws -> [IntakeRecord] { throw StorageError("postgres: not implemented") }
}
