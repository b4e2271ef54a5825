import Foundation
import FaxgateCore
import GRDB
import GRDBSQLite

/// The embedded default storage: one SQLite file (WAL mode) through GRDB, linked against Debian's libsqlite3.
///
/// WAL lets `faxgate journal` read while `serve` writes. GRDB's pool serializes writes, so there is one
/// writer per database, and each state change goes in one transaction with its history event.
public final class SQLiteStorage: Storage {
    let pool: DatabasePool

    /// - Parameters:
    ///   - path: database file; its directory must exist.
    ///   - readOnly: for the CLI, which never writes to the database.
    public init(path: String, readOnly: Bool = false) throws {
        var config = GRDB.Configuration()
        config.readonly = readOnly
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        if !readOnly { try DurableFile.prepareDatabaseFile(path) }  // 0600 before SQLite creates it or its -wal/-shm
        pool = try DatabasePool(path: path, configuration: config)
        if !readOnly {
            // GRDB puts WAL connections in synchronous=NORMAL, where a power cut can take the last commits
            // with it. The gateway acts outside the database right after committing (IMAP MOVE, SMTP hand-over,
            // dialling), so a commit must be on disk when it returns: FULL syncs the WAL on every commit.
            // Set here, after GRDB's WAL setup, on the one writer connection (pragma is per connection).
            try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
        }
    }

    /// The writer connection's `PRAGMA synchronous` (2 = FULL), for tests and `config check`.
    public func synchronousMode() async throws -> Int {
        try await pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") ?? -1 }
    }

    public func migrate() async throws {
        try Self.migrator.migrate(pool)
    }

    /// Migrations are only ever added, never edited once released.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-calls") { db in
            try db.create(table: "call") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("direction", .text).notNull().check { ["incoming", "outgoing"].contains($0) }
                t.column("kind", .text).notNull().check { ["fax", "voice"].contains($0) }
                t.column("state", .text).notNull().indexed()
                    .check { CallRecord.State.allCases.map(\.rawValue).contains($0) }
                t.column("outcome", .text)
                t.column("startedAt", .datetime).notNull().indexed()
                t.column("endedAt", .datetime)
                t.column("callingNumber", .text)
                t.column("calledNumber", .text).notNull()
                t.column("extensionName", .text)
                t.column("remoteStationID", .text)
                t.column("pages", .integer)
                t.column("bitRate", .integer)
                t.column("fine", .boolean)
                t.column("reason", .integer)
                t.column("reasonB3", .integer)
                t.column("reasonText", .text)
                t.column("spoolPath", .text)
                t.column("detail", .text)
                t.column("mailMessageID", .text)
            }
            try db.create(table: "callEvent") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("callID", .integer).notNull().indexed().references("call", onDelete: .cascade)
                t.column("at", .datetime).notNull()
                t.column("text", .text).notNull()
            }
            try db.create(table: "document") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("callID", .integer).notNull().indexed().references("call", onDelete: .cascade)
                t.column("kind", .text).notNull()
                t.column("filename", .text).notNull()
                t.column("bytes", .blob).notNull()
                t.uniqueKey(["callID", "kind"], onConflict: .replace)
            }
        }
        registerJobMigrations(&m)
        registerCallDetailMigrations(&m)
        registerIntakeReplyMigrations(&m)
        registerJobLimitKeyMigration(&m)
        registerJobDocumentPageMigration(&m)
        registerAccountMigrations(&m)
        registerSettingMigrations(&m)
        registerEngineDetailMigrations(&m)
        registerVoiceRecordingMigration(&m)
        registerJobLeaseMigration(&m)
        return m
    }

    public func insertCall(_ record: CallRecord, event: String) async throws -> CallRecord {
        try await pool.write { db in
            var row = CallRow(record)
            try row.insert(db)
            _ = try CallEventRow(callID: row.id!, at: Date(), text: event).inserted(db)
            return row.record
        }
    }

    public func updateCall(_ record: CallRecord, event: String) async throws {
        guard let id = record.id else { throw StorageError("updateCall needs a record with an id") }
        try await pool.write { db in
            try CallRow(record).update(db)
            _ = try CallEventRow(callID: id, at: Date(), text: event).inserted(db)
        }
    }

    public func call(id: Int64) async throws -> CallRecord? {
        try await pool.read { db in try CallRow.fetchOne(db, key: id)?.record }
    }

    public func recentCalls(limit: Int) async throws -> [CallRecord] {
        try await pool.read { db in
            try CallRow.order(Column("startedAt").desc, Column("id").desc).limit(limit).fetchAll(db).map(\.record)
        }
    }

    public func calls(in states: Set<CallRecord.State>) async throws -> [CallRecord] {
        try await pool.read { db in
            try CallRow.filter(states.map(\.rawValue).contains(Column("state"))).order(Column("id")).fetchAll(db).map(\.record)
        }
    }

    public func events(callID: Int64) async throws -> [CallEvent] {
        try await pool.read { db in
            try CallEventRow.filter(Column("callID") == callID).order(Column("id")).fetchAll(db)
                .map { CallEvent(callID: $0.callID, at: $0.at, text: $0.text) }
        }
    }

    public func putDocument(_ document: StoredDocument) async throws {
        try await pool.write { db in
            _ = try DocumentRow(id: nil, callID: document.callID, kind: document.kind, filename: document.filename,
                            bytes: Data(document.bytes)).inserted(db)
        }
    }

    public func documents(callID: Int64) async throws -> [StoredDocument] {
        try await pool.read { db in
            try DocumentRow.filter(Column("callID") == callID).order(Column("id")).fetchAll(db).map {
                StoredDocument(callID: $0.callID, kind: $0.kind, filename: $0.filename, bytes: [UInt8]($0.bytes))
            }
        }
    }
}

extension SQLiteStorage {
    /// Version of the libsqlite3 GRDB is linked against.
    public static var sqliteVersion: String { String(cString: sqlite3_libversion()) }
}
