import FaxgateCore
import Foundation
import GRDB

// A generic, read-only dump of every table, for `faxgate storage migrate`: the copy goes column by column by
// name, so a migration added here later is copied without changing the command.
extension SQLiteStorage {
    /// Every table of the database (not GRDB's bookkeeping), with typed columns and the tables it references.
    public func exportTables() async throws -> [TableDescription] {
        try await pool.read { db in
            let names = try String.fetchAll(db, sql: """
                SELECT name FROM sqlite_master WHERE type = 'table'
                AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name
                """)
            return try names.map { table in
                let columns = try Row.fetchAll(db, sql: "SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", arguments: [table]).map { r in
                    TableColumn(name: r["name"], kind: Self.kind(declared: r["type"]), primaryKey: r["pk"])
                }
                let parents = try String.fetchAll(db, sql: "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)", arguments: [table])
                return TableDescription(name: table, columns: columns, parents: parents.filter { $0 != table })
            }
        }
    }

    /// The column's meaning from its declared type (GRDB declares DATETIME, BOOLEAN, INTEGER, TEXT, BLOB, DOUBLE).
    static func kind(declared: String) -> TableColumnKind {
        let t = declared.uppercased()
        if t.contains("DATE") || t.contains("TIME") { return .date }
        if t.contains("BOOL") { return .bool }
        if t.contains("INT") { return .integer }
        if t.contains("BLOB") { return .blob }
        if t.contains("REAL") || t.contains("DOUB") || t.contains("FLOA") || t.contains("NUMERIC") { return .real }
        return .text
    }

    public func exportCount(_ table: TableDescription) async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(Self.quoted(table.name))") ?? 0 }
    }

    /// One batch in key order: after `afterKey` on the integer key when the table has one, else by `offset`.
    /// Values come in `table.columns` order, coerced to their column's kind.
    public func exportRows(_ table: TableDescription, afterKey: Int64?, offset: Int, limit: Int) async throws -> [[TableValue]] {
        let cols = table.columns.map { Self.quoted($0.name) }.joined(separator: ", ")
        let order = table.keyColumns.map(Self.quoted).joined(separator: ", ")
        return try await pool.read { db in
            let rows: [Row]
            if let key = table.integerKey {
                rows = try Row.fetchAll(db, sql: "SELECT \(cols) FROM \(Self.quoted(table.name)) WHERE \(Self.quoted(key)) > ? ORDER BY \(order) LIMIT ?",
                                        arguments: [afterKey ?? Int64.min, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT \(cols) FROM \(Self.quoted(table.name)) ORDER BY \(order) LIMIT ? OFFSET ?",
                                        arguments: [limit, offset])
            }
            return rows.map { row in
                table.columns.enumerated().map { i, column in
                    let v: TableValue
                    switch (row[i] as DatabaseValue).storage {
                    case .null: v = .null
                    case .int64(let x): v = .integer(x)
                    case .double(let x): v = .real(x)
                    case .string(let x): v = .text(x)
                    case .blob(let x): v = .blob([UInt8](x))
                    }
                    return TableCanonical.coerce(v, to: column.kind)
                }
            }
        }
    }

    /// Identifiers come from sqlite_master and pragma_table_info (our own schema), quoted all the same.
    static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}
