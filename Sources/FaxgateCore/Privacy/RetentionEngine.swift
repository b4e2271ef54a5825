import Foundation
import Logging

/// One line of the audit trail: what a retention run or an erasure removed — counts, never content or ids.
public struct AuditRecord: Sendable, Codable, Equatable {
    public var at: Date
    /// "retention", "erase", "export", "hold", "release"
    public var action: String
    public var category: String
    public var items: Int
    public var rows: Int
    public var files: Int
    public var bytes: Int64
    /// Items skipped because of a legal hold.
    public var held: Int
    /// Items handed to the archive export before deletion.
    public var exported: Int
    public init(at: Date = Date(), action: String, category: String, counts: DeletionCounts = .init(), held: Int = 0, exported: Int = 0) {
        self.at = at; self.action = action; self.category = category; self.items = counts.items; self.rows = counts.rows
        self.files = counts.files; self.bytes = counts.bytes; self.held = held; self.exported = exported
    }
}

/// Where audit records go (the storage plugin's `auditRecord` table).
public protocol AuditTrail: Sendable {
    func append(_ record: AuditRecord) async throws
    func auditRecords(limit: Int) async throws -> [AuditRecord]
}

/// Subjects under legal hold: from the configuration and from `faxgate gdpr hold`.
public protocol LegalHoldStore: Sendable {
    func holds() async throws -> [SubjectID]
    func addHold(_ subject: SubjectID, reason: String) async throws
    func releaseHold(_ subject: SubjectID) async throws -> Bool
}

/// Export-before-delete target (plugin `ArchiveExport`): gets every item before it is deleted; a failed
/// export keeps the item (it is retried next run) rather than losing data the law says to keep.
public protocol ArchiveExporter: Sendable {
    var name: String { get }
    func export(_ item: RetentionItem, entries: [ExportEntry]) async throws
}

public struct RetentionReport: Sendable, Codable {
    public struct Line: Sendable, Codable {
        public var category: String
        public var days: Int
        public var expired: Int
        public var held: Int
        public var exported: Int
        public var deleted: DeletionCounts
        public var note: String?
    }
    public var dryRun: Bool
    public var lines: [Line] = []

    public func render() -> String {
        var out = dryRun ? "retention dry run — nothing was changed\n" : "retention run\n"
        for l in lines {
            if let note = l.note { out += "  \(l.category): \(note)\n"; continue }
            out += "  \(l.category) (\(l.days) days): \(l.expired) expired, \(l.held) on legal hold"
            if l.exported > 0 { out += ", \(l.exported) exported" }
            if !dryRun { out += ", deleted \(l.deleted.items) item(s), \(l.deleted.rows) row(s), \(l.deleted.files) file(s), \(l.deleted.bytes) bytes" }
            out += "\n"
        }
        return out
    }
}

/// Applies retention periods, legal holds, export-before-delete and the audit trail to every category.
public struct RetentionEngine: Sendable {
    public var categories: [any RetentionCategory]
    public var settings: RetentionSettings
    /// Config holds (privacy.legal_holds); the store adds those set with `gdpr hold`.
    public var configHolds: [SubjectID]
    public var holdStore: (any LegalHoldStore)?
    public var audit: (any AuditTrail)?
    public var exporter: (any ArchiveExporter)?
    public var logger: Logger

    public init(categories: [any RetentionCategory], settings: RetentionSettings, configHolds: [SubjectID],
                holdStore: (any LegalHoldStore)?, audit: (any AuditTrail)?, exporter: (any ArchiveExporter)?, logger: Logger) {
        self.categories = categories; self.settings = settings; self.configHolds = configHolds; self.holdStore = holdStore
        self.audit = audit; self.exporter = exporter; self.logger = logger
    }

    public func allHolds() async throws -> Set<SubjectID> {
        Set(configHolds).union(try await holdStore?.holds() ?? [])
    }

    public func run(now: Date = Date(), dryRun: Bool) async throws -> RetentionReport {
        var report = RetentionReport(dryRun: dryRun)
        let holds = try await allHolds()
        for category in categories {
            let days = settings.days(for: category.configKey)
            guard days > 0 else {
                report.lines.append(.init(category: category.name, days: 0, expired: 0, held: 0, exported: 0, deleted: .init(), note: "kept (0 days)"))
                continue
            }
            let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
            let expired = try await category.expired(before: cutoff)
            let (line, _) = try await process(expired, in: category, holds: holds, action: "retention", dryRun: dryRun)
            var l = line
            l.days = days
            report.lines.append(l)
        }
        let implemented = Set(categories.map(\.configKey))
        for planned in RetentionSettings.categories where !implemented.contains(planned.key) {
            report.lines.append(.init(category: planned.key, days: settings.days(for: planned.key), expired: 0, held: 0, exported: 0,
                                      deleted: .init(), note: "nothing stored in this category by this build"))
        }
        return report
    }

    /// Everything about one subject, per category (for export and erase).
    public func items(about subject: SubjectID) async throws -> [(category: any RetentionCategory, items: [RetentionItem])] {
        var out: [(any RetentionCategory, [RetentionItem])] = []
        for category in categories {
            let items = try await category.items(about: subject)
            if !items.isEmpty { out.append((category, items)) }
        }
        return out
    }

    /// Art. 17 erasure: deletes everything about the subject except items under legal hold.
    public func erase(subject: SubjectID, dryRun: Bool) async throws -> RetentionReport {
        var report = RetentionReport(dryRun: dryRun)
        let holds = try await allHolds()
        for (category, items) in try await items(about: subject) {
            var (line, _) = try await process(items, in: category, holds: holds, action: "erase", dryRun: dryRun, export: false)
            line.days = 0
            report.lines.append(line)
        }
        return report
    }

    private func process(_ items: [RetentionItem], in category: any RetentionCategory, holds: Set<SubjectID>, action: String,
                         dryRun: Bool, export: Bool = true) async throws -> (RetentionReport.Line, [RetentionItem]) {
        let free = items.filter { $0.subjects.allSatisfy { !holds.contains($0) } }
        let held = items.count - free.count
        var line = RetentionReport.Line(category: category.name, days: 0, expired: items.count, held: held, exported: 0, deleted: .init())
        guard !dryRun, !free.isEmpty || held > 0 else { return (line, free) }
        var deletable = free
        if export, settings.exportBeforeDelete, let exporter {
            deletable = []
            for item in free {
                do {
                    try await exporter.export(item, entries: try await category.exportEntries(for: item))
                    deletable.append(item)
                } catch {
                    logger.error("export before delete failed; item kept for the next run", metadata: [
                        "category": "\(category.name)", "exporter": "\(exporter.name)", "error": "\(error)"])
                }
            }
            line.exported = deletable.count
        }
        if !deletable.isEmpty {
            line.deleted = try await category.delete(deletable)
            try await category.finishDeletion()
        }
        try await audit?.append(AuditRecord(action: action, category: category.name, counts: line.deleted, held: held, exported: line.exported))
        logger.notice("\(action): \(category.name)", metadata: [
            "items": "\(line.deleted.items)", "rows": "\(line.deleted.rows)", "files": "\(line.deleted.files)", "held": "\(held)"])
        return (line, deletable)
    }
}
