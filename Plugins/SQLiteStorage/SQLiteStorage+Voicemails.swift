import FaxgateCore
import Foundation
import GRDB

extension SQLiteStorage {
    /// Finished incoming voice calls (mailed, failed mail, or closed without mail).
    func voiceCalls(before cutoff: Date?) async throws -> [CallRow] {
        try await finishedIncomingCalls(kind: .voice, before: cutoff, withContent: nil)
    }
}

/// Voicemails: the call row and history, the recording (`incoming/<id>.alaw`) and every outbox copy of its mail.
/// Deletion and export work as for received faxes (same rows, same derived files), so they are delegated.
public struct VoicemailsCategory: RetentionCategory {
    public let name = "voicemails"
    let storage: SQLiteStorage
    let spoolDirectory: String
    let countryCode: String?
    private let calls: ReceivedFaxesCategory

    public init(storage: SQLiteStorage, spoolDirectory: String, countryCode: String?) {
        self.storage = storage; self.spoolDirectory = spoolDirectory; self.countryCode = countryCode
        calls = ReceivedFaxesCategory(storage: storage, spoolDirectory: spoolDirectory, countryCode: countryCode)
    }

    func item(_ row: CallRow) -> RetentionItem {
        let subjects = [row.callingNumber].compactMap { $0 }.compactMap { SubjectID($0, countryCode: countryCode) }.filter { $0.kind == .phone }
        return RetentionItem(category: name, id: "call-\(row.id ?? 0)", createdAt: row.startedAt, subjects: Array(Set(subjects)),
                             files: SpoolFiles.derivedFiles(callID: row.id ?? 0, spoolPath: row.spoolPath, spoolDirectory: spoolDirectory))
    }

    public func expired(before cutoff: Date) async throws -> [RetentionItem] {
        try await storage.voiceCalls(before: cutoff).map(item)
    }

    public func items(about subject: SubjectID) async throws -> [RetentionItem] {
        guard subject.kind == .phone else { return [] }
        return try await storage.voiceCalls(before: nil).map(item).filter { $0.subjects.contains(subject) }
    }

    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts { try await calls.delete(items) }
    public func finishDeletion() async throws { try await calls.finishDeletion() }
    public func exportEntries(for item: RetentionItem) async throws -> [ExportEntry] { try await calls.exportEntries(for: item) }
}
