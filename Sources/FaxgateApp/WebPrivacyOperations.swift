import FaxgateCore
import FaxgateWeb
import Foundation
import Logging

/// The privacy pages' operations: each one calls the `PrivacyActions` function the matching CLI command calls,
/// on the live configuration and the gateway's storage.
struct WebPrivacyOperations: PrivacyOperations {
    let configuration: @Sendable () -> Configuration
    /// The configuration file (a snapshot carries it, sanitized, as `snapshot create` does).
    let configPath: String
    let storage: any Storage
    let logger: Logger

    init(configuration: @escaping @Sendable () -> Configuration, configPath: String, storage: any Storage, logger: Logger) {
        self.configuration = configuration; self.configPath = configPath; self.storage = storage; self.logger = logger
    }

    struct NoPrivacySupport: Error, CustomStringConvertible {
        var description: String { "the storage driver has no privacy support (audit trail, legal holds, retention)" }
    }

    /// The storage's privacy capability; asked for, never assumed (the core knows no concrete plugin).
    func privacy() async throws -> any PrivacyStorage {
        guard let p = storage as? any PrivacyStorage else { throw NoPrivacySupport() }
        try await p.migratePrivacy()
        return p
    }

    func record() async -> ProcessingRecord {
        await PrivacyActions.record(configuration(), storage: storage as? any PrivacyStorage)
    }

    func subject(_ text: String) -> SubjectID? {
        SubjectID(text, countryCode: configuration().privacyCountryCode)
    }

    var exportDirectory: String { configuration().spoolDirectory + "/privacy/exports" }

    func exportSubject(_ subject: SubjectID) async throws -> SubjectExport {
        let dir = exportDirectory
        try DurableFile.makeDirectory(dir)
        // Exports never fetched (browser closed, restart) go after an hour.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let path = dir + "/" + name
            if let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
               Date().timeIntervalSince(modified) > 3600 { try? SecureFileRemoval.remove(path) }
        }
        let path = "\(dir)/export-\(UUID().uuidString.lowercased()).zip"
        let result = try await PrivacyActions.export(subject, to: path, configuration(), storage: try await privacy(), logger: logger)
        return SubjectExport(path: result.path, items: result.items, passphrase: result.passphrase)
    }

    func eraseSubject(_ subject: SubjectID, dryRun: Bool) async throws -> SubjectErasure {
        switch try await PrivacyActions.erase(subject, dryRun: dryRun, configuration(), storage: try await privacy(), logger: logger) {
        case .refused(let hold): return .refused(Self.hold(hold))
        case .done(let report, let files): return .done(report, logFiles: files)
        }
    }

    func holds() async throws -> [PrivacyHold] {
        try await PrivacyActions.holds(configuration(), storage: try await privacy()).map(Self.hold)
    }

    func addHold(_ subject: SubjectID, reason: String) async throws {
        try await PrivacyActions.addHold(subject, reason: reason, storage: try await privacy())
    }

    func releaseHold(_ subject: SubjectID) async throws -> Bool {
        try await PrivacyActions.releaseHold(subject, storage: try await privacy())
    }

    static func hold(_ h: PrivacyActions.HoldEntry) -> PrivacyHold {
        PrivacyHold(subject: h.subject, reason: h.reason, since: h.since, fromConfiguration: h.fromConfiguration)
    }

    func snapshots() -> [SnapshotInfo] { PrivacyActions.snapshots(configuration()) }

    func snapshotPath(named name: String) -> String? { PrivacyActions.snapshotPath(named: name, configuration()) }

    func createSnapshot(fromDay: String?, toDay: String?) async throws -> CreatedSnapshot {
        let from = try PrivacyActions.snapshotDay(fromDay, endOfDay: false)
        let to = try PrivacyActions.snapshotDay(toDay, endOfDay: true)
        let result = try await PrivacyActions.createSnapshot(configuration(), configPath: configPath, from: from, to: to,
                                                             storage: storage as? any PrivacyStorage)
        return CreatedSnapshot(info: result.info, passphrase: result.passphrase)
    }

    func deleteSnapshot(named name: String) async throws -> DeletionCounts {
        // The deletion goes into the privacy trail (tables created first) when the storage keeps one.
        try await PrivacyActions.deleteSnapshot(named: name, configuration(), storage: storage is any PrivacyStorage ? try await privacy() : nil)
    }

    func retentionAudit(limit: Int) async throws -> [AuditRecord] {
        try await privacy().auditRecords(limit: limit)
    }

    func retentionRun(dryRun: Bool) async throws -> RetentionReport {
        try await PrivacyActions.retentionRun(configuration(), storage: try await privacy(), logger: logger, dryRun: dryRun)
    }
}
