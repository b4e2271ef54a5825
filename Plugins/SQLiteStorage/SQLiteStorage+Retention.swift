import FaxgateCore
import Foundation
import GRDB

/// Privacy tables and the retention categories backed by this database.
///
/// The privacy tables have their own migrator ("privacy-*" identifiers in the same grdb_migrations table)
/// so this file never touches the journal's migrations; GRDB ignores identifiers a migrator does not know.
extension SQLiteStorage: AuditTrail, LegalHoldStore {
    static var privacyMigrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("privacy-v1-audit-holds") { db in
            // Counts only: the audit trail must not become a second copy of what was deleted.
            try db.create(table: "auditRecord") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull().indexed()
                t.column("action", .text).notNull()
                t.column("category", .text).notNull()
                t.column("items", .integer).notNull()
                t.column("rows", .integer).notNull()
                t.column("files", .integer).notNull()
                t.column("bytes", .integer).notNull()
                t.column("held", .integer).notNull()
                t.column("exported", .integer).notNull()
            }
            try db.create(table: "legalHold") { t in
                t.column("kind", .text).notNull()
                t.column("subject", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("since", .datetime).notNull()
                t.primaryKey(["kind", "subject"])
            }
        }
        return m
    }

    /// Creates the audit and legal-hold tables. Idempotent; `serve` and every privacy command call it.
    public func migratePrivacy() throws {
        try Self.privacyMigrator.migrate(pool)
    }

    // MARK: AuditTrail

    public func append(_ record: AuditRecord) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO auditRecord (at, action, category, items, rows, files, bytes, held, exported)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.at, record.action, record.category, record.items, record.rows, record.files,
                                 record.bytes, record.held, record.exported])
        }
    }

    public func auditRecords(limit: Int) async throws -> [AuditRecord] {
        try await pool.read { db in
            guard try db.tableExists("auditRecord") else { return [] }
            return try Row.fetchAll(db, sql: "SELECT * FROM auditRecord ORDER BY id DESC LIMIT ?", arguments: [limit]).map { r in
                var a = AuditRecord(at: r["at"], action: r["action"], category: r["category"])
                a.items = r["items"]; a.rows = r["rows"]; a.files = r["files"]; a.bytes = r["bytes"]; a.held = r["held"]; a.exported = r["exported"]
                return a
            }
        }
    }

    // MARK: LegalHoldStore

    public func holds() async throws -> [SubjectID] {
        try await pool.read { db in
            guard try db.tableExists("legalHold") else { return [] }
            return try Row.fetchAll(db, sql: "SELECT kind, subject FROM legalHold ORDER BY since").compactMap { r in
                SubjectID.Kind(rawValue: r["kind"]).map { SubjectID(kind: $0, normalized: r["subject"]) }
            }
        }
    }

    public func addHold(_ subject: SubjectID, reason: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO legalHold (kind, subject, reason, since) VALUES (?, ?, ?, ?)",
                           arguments: [subject.kind.rawValue, subject.normalized, reason, Date()])
        }
    }

    public func releaseHold(_ subject: SubjectID) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM legalHold WHERE kind = ? AND subject = ?", arguments: [subject.kind.rawValue, subject.normalized])
            return db.changesCount > 0
        }
    }

    // MARK: Physical deletion

    /// Makes deleted rows unrecoverable from the file: deleted cells zeroed, free pages dropped (VACUUM
    /// rebuilds the file, which also removes stale copies left in free space by earlier updates), and the
    /// WAL, which still holds pre-deletion page images, checkpointed and truncated to zero bytes.
    public func compactAfterDeletion() async throws {
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "VACUUM")
            _ = try db.checkpoint(.truncate)
        }
    }

    /// Deletes calls with their events and documents in one transaction; returns the rows removed.
    func deleteCalls(_ ids: [Int64]) async throws -> Int {
        try await pool.writeWithoutTransaction { db in
            // Per connection: zero deleted content at once, not only at the VACUUM.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            var rows = 0
            try db.inTransaction {
                for id in ids {
                    try db.execute(sql: "DELETE FROM document WHERE callID = ?", arguments: [id]); rows += db.changesCount
                    try db.execute(sql: "DELETE FROM callEvent WHERE callID = ?", arguments: [id]); rows += db.changesCount
                    try db.execute(sql: "DELETE FROM call WHERE id = ?", arguments: [id]); rows += db.changesCount
                }
                return .commit
            }
            return rows
        }
    }

    // MARK: Statistics (counts only, for support snapshots and the record of processing)

    public func statistics() async throws -> [String: Int] {
        try await pool.read { db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT direction, kind, state, COUNT(*) AS n FROM call GROUP BY direction, kind, state") {
                let key = "calls.\(row["direction"] as String).\(row["kind"] as String).\(row["state"] as String)"
                out[key] = row["n"]
            }
            out["call_events"] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM callEvent") ?? 0
            out["documents"] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM document") ?? 0
            out["documents.bytes"] = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM document") ?? 0
            if try db.tableExists("auditRecord") { out["audit_records"] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM auditRecord") ?? 0 }
            if try db.tableExists("legalHold") { out["legal_holds"] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM legalHold") ?? 0 }
            if try db.tableExists("job") { out["jobs"] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0 }
            return out
        }
    }

    /// Which kinds of data this installation actually holds (for the record of processing).
    public func storedDataKinds() async throws -> Set<String> {
        try await pool.read { db in
            var kinds: Set<String> = []
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM call WHERE direction = 'incoming' AND kind = 'fax'") ?? 0 > 0 { kinds.insert("received_faxes") }
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM call WHERE kind = 'voice'") ?? 0 > 0 { kinds.insert("voicemails") }
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM call WHERE direction = 'outgoing'") ?? 0 > 0 { kinds.insert("sent_faxes") }
            if try db.tableExists("job"), try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0 > 0 { kinds.insert("sent_faxes") }
            return kinds
        }
    }

    fileprivate func incomingFaxCalls(before cutoff: Date?, withContent: Bool) async throws -> [CallRow] {
        try await finishedIncomingCalls(kind: .fax, before: cutoff, withContent: withContent)
    }

    /// Incoming calls of one kind that the pipeline is done with. In-flight calls belong to the pipeline (it still
    /// updates their rows); they expire on a later run. `withContent` nil = with or without stored content.
    func finishedIncomingCalls(kind: CallRecord.Kind, before cutoff: Date?, withContent: Bool?) async throws -> [CallRow] {
        try await pool.read { db in
            var sql = """
                SELECT * FROM call WHERE direction = 'incoming' AND kind = ?
                AND state NOT IN ('receiving', 'received', 'mail_queued')
                """
            var args: StatementArguments = [kind.rawValue]
            if let withContent {
                sql += " AND (spoolPath IS NOT NULL OR EXISTS (SELECT 1 FROM document d WHERE d.callID = call.id)) = ?"
                args += [withContent]
            }
            if let cutoff { sql += " AND startedAt < ?"; args += [cutoff] }
            return try CallRow.fetchAll(db, sql: sql + " ORDER BY id", arguments: args)
        }
    }
}

/// Received faxes: the call row, its history and stored documents, the spool SFF (and any other
/// `incoming/<id>.*`), and every outbox or outbox/failed copy of its mail.
public struct ReceivedFaxesCategory: RetentionCategory {
    public let name = "received_faxes"
    let storage: SQLiteStorage
    let spoolDirectory: String
    let countryCode: String?
    /// false: the `journal` category — calls that never produced content (rejected, failed before any page).
    let withContent: Bool

    public init(storage: SQLiteStorage, spoolDirectory: String, countryCode: String?) {
        self.init(storage: storage, spoolDirectory: spoolDirectory, countryCode: countryCode, withContent: true)
    }
    init(storage: SQLiteStorage, spoolDirectory: String, countryCode: String?, withContent: Bool) {
        self.storage = storage; self.spoolDirectory = spoolDirectory; self.countryCode = countryCode; self.withContent = withContent
    }

    func item(_ row: CallRow) -> RetentionItem {
        let subjects = [row.callingNumber, row.remoteStationID].compactMap { $0 }
            .compactMap { SubjectID($0, countryCode: countryCode) }.filter { $0.kind == .phone }
        return RetentionItem(category: name, id: "call-\(row.id ?? 0)", createdAt: row.startedAt, subjects: Array(Set(subjects)),
                             files: SpoolFiles.derivedFiles(callID: row.id ?? 0, spoolPath: row.spoolPath, spoolDirectory: spoolDirectory))
    }

    public func expired(before cutoff: Date) async throws -> [RetentionItem] {
        try await storage.incomingFaxCalls(before: cutoff, withContent: withContent).map(item)
    }

    public func items(about subject: SubjectID) async throws -> [RetentionItem] {
        guard subject.kind == .phone else { return [] }
        return try await storage.incomingFaxCalls(before: nil, withContent: withContent).map(item).filter { $0.subjects.contains(subject) }
    }

    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts {
        var counts = DeletionCounts()
        var ids: [Int64] = []
        for item in items {
            guard let id = Int64(item.id.dropFirst("call-".count)) else { continue }
            // Files first: if we stop half-way the row is still there and the next run finds the rest.
            let row = try await storage.call(id: id)
            let files = Set(item.files + SpoolFiles.derivedFiles(callID: id, spoolPath: row?.spoolPath, spoolDirectory: spoolDirectory))
            for file in files.sorted() where FileManager.default.fileExists(atPath: file) {
                counts.bytes += try SecureFileRemoval.remove(file)
                counts.files += 1
            }
            ids.append(id)
            counts.items += 1
        }
        counts.rows = try await storage.deleteCalls(ids)
        return counts
    }

    public func finishDeletion() async throws { try await storage.compactAfterDeletion() }

    public func exportEntries(for item: RetentionItem) async throws -> [ExportEntry] {
        guard let id = Int64(item.id.dropFirst("call-".count)), let call = try await storage.call(id: id) else { return [] }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var entries = [ExportEntry(name: "\(item.id)/call.json", source: .bytes(Array(try encoder.encode(call))))]
        let events = try await storage.events(callID: id).map { ["at": ISO8601DateFormatter().string(from: $0.at), "text": $0.text] }
        entries.append(ExportEntry(name: "\(item.id)/history.json", source: .bytes(Array(try encoder.encode(events)))))
        for doc in try await storage.documents(callID: id) {
            entries.append(ExportEntry(name: "\(item.id)/\(doc.filename)", source: .bytes(doc.bytes)))
        }
        for file in item.files where FileManager.default.fileExists(atPath: file) {
            let rel = file.hasPrefix(spoolDirectory + "/") ? String(file.dropFirst(spoolDirectory.count + 1)) : (file as NSString).lastPathComponent
            entries.append(ExportEntry(name: "\(item.id)/spool/\(rel)", source: .file(file)))
        }
        return entries
    }
}

/// Journal rows of calls that never produced content: rejected calls, failures before the first page.
public struct JournalCategory: RetentionCategory {
    public let name = "journal"
    let base: ReceivedFaxesCategory
    public init(storage: SQLiteStorage, spoolDirectory: String, countryCode: String?) {
        base = ReceivedFaxesCategory(storage: storage, spoolDirectory: spoolDirectory, countryCode: countryCode, withContent: false)
    }
    func relabel(_ items: [RetentionItem]) -> [RetentionItem] { items.map { var i = $0; i.category = name; return i } }
    public func expired(before cutoff: Date) async throws -> [RetentionItem] { relabel(try await base.expired(before: cutoff)) }
    public func items(about subject: SubjectID) async throws -> [RetentionItem] { relabel(try await base.items(about: subject)) }
    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts { try await base.delete(items) }
    public func exportEntries(for item: RetentionItem) async throws -> [ExportEntry] { try await base.exportEntries(for: item) }
    public func finishDeletion() async throws { try await base.finishDeletion() }
}
