import Foundation
import FaxgateCore
import GRDB

/// Versioned settings documents: every write names the version it read, so two admins never overwrite each other.
extension SQLiteStorage {
    /// Migrations are only ever added, never edited once released.
    static func registerSettingMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("web-v1-setting") { db in
            try db.create(table: "setting", options: .withoutRowID) { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
                t.column("version", .integer).notNull().check { $0 >= 1 }
                t.column("updatedAt", .datetime).notNull()
                t.column("updatedBy", .text).notNull()
            }
        }
    }

    public func setting(_ key: String) async throws -> StoredSetting? {
        try await pool.read { db in
            guard try db.tableExists("setting") else { return nil }
            return try Self.fetchSetting(db, key)
        }
    }

    @discardableResult
    public func putSetting(_ key: String, value: String, expectingVersion: Int?, by: String) async throws -> StoredSetting {
        let now = Date()
        return try await pool.write { db in
            // The version check is part of the statement itself, so it holds whichever process writes at the same time.
            if let expected = expectingVersion {
                try db.execute(sql: """
                    UPDATE setting SET value = ?, version = version + 1, updatedAt = ?, updatedBy = ? WHERE key = ? AND version = ?
                    """, arguments: [value, now, by, key, expected])
            } else {
                try db.execute(sql: """
                    INSERT INTO setting (key, value, version, updatedAt, updatedBy) VALUES (?, ?, 1, ?, ?) ON CONFLICT(key) DO NOTHING
                    """, arguments: [key, value, now, by])
            }
            guard db.changesCount == 1, let stored = try Self.fetchSetting(db, key) else {
                throw SettingVersionConflict(key: key, actual: try Self.fetchSetting(db, key)?.version)
            }
            return stored
        }
    }

    private static func fetchSetting(_ db: Database, _ key: String) throws -> StoredSetting? {
        try Row.fetchOne(db, sql: "SELECT * FROM setting WHERE key = ?", arguments: [key]).map { r in
            StoredSetting(key: r["key"], value: r["value"], version: r["version"], updatedAt: r["updatedAt"], updatedBy: r["updatedBy"])
        }
    }
}
