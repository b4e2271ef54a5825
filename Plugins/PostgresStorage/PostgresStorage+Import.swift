import FaxgateCore
import Foundation
import Logging
import NIOCore
import PostgresNIO

// The receiving side of `faxgate storage migrate`: generic, column by column by name, so the copy follows the
// schema the area files define instead of a second copy of it. Bookkeeping lives in two tables of its own
// (created here, not by the plugin's migrations: a gateway that never imports never has them):
// faxgate_import_source (which source filled this database) and faxgate_import_progress (resume points).

/// A column of a table in the target database, as information_schema describes it.
public struct PostgresImportColumn: Sendable, Hashable {
    public var name: String
    /// information_schema.columns.data_type ("bigint", "timestamp with time zone", "bytea", …).
    public var dataType: String
    /// An identity or serial column: its sequence is set past the copied ids at the end.
    public var generated: Bool
}

public struct PostgresImportTable: Sendable {
    public var name: String
    public var columns: [PostgresImportColumn]
    public func column(_ name: String) -> PostgresImportColumn? { columns.first { $0.name == name } }
}

/// Where a table's copy stands for one source.
public struct PostgresImportProgress: Sendable {
    public var lastKey: Int64?
    public var copied: Int
    public var finished: Bool
    public init(lastKey: Int64?, copied: Int, finished: Bool) {
        self.lastKey = lastKey; self.copied = copied; self.finished = finished
    }
}

/// Rows for a second table written in the same transaction as a batch (documents kept beside their row).
public struct PostgresImportRows: Sendable {
    public var table: PostgresImportTable
    public var columns: [String]
    public var rows: [[TableValue]]
    public init(table: PostgresImportTable, columns: [String], rows: [[TableValue]]) {
        self.table = table; self.columns = columns; self.rows = rows
    }
}

/// Documents kept once per spool path in a table of their own (the job documents: several jobs of one mail
/// share one rendering), referenced from the row by id.
public struct PostgresImportDocuments: Sendable {
    public var table: PostgresImportTable
    public var idColumn: String
    public var pathColumn: String
    public var bytesColumn: String
    /// The row's column that references `table.idColumn`; the batch's value for it is the path (text).
    public var referenceColumn: String
    public var files: [String: [UInt8]]
    public init(table: PostgresImportTable, idColumn: String, pathColumn: String, bytesColumn: String, referenceColumn: String,
                files: [String: [UInt8]]) {
        self.table = table; self.idColumn = idColumn; self.pathColumn = pathColumn; self.bytesColumn = bytesColumn
        self.referenceColumn = referenceColumn; self.files = files
    }
}

public struct ImportRefused: Error, CustomStringConvertible {
    public var description: String
}

extension PostgresStorage {
    static let importLockKey: Int64 = 0x6661_7800_0010

    /// The application's tables in the connection's schema (the plugin's own bookkeeping left out).
    public func importTables() async throws -> [PostgresImportTable] {
        var tables: [String: PostgresImportTable] = [:]
        let rows = try await client.query("""
            SELECT table_name::text, column_name::text, data_type::text,
                   (is_identity = 'YES' OR coalesce(column_default, '') LIKE 'nextval(%') AS generated
            FROM information_schema.columns c
            WHERE table_schema = current_schema()
              AND table_name::text NOT LIKE 'faxgate\\_%'
              AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = c.table_schema
                          AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE')
            ORDER BY table_name, ordinal_position
            """, logger: logger)
        for try await (table, column, type, generated) in rows.decode((String, String, String, Bool).self) {
            tables[table, default: PostgresImportTable(name: table, columns: [])].columns
                .append(PostgresImportColumn(name: column, dataType: type, generated: generated))
        }
        return tables.values.sorted { $0.name < $1.name }
    }

    /// Starts or resumes the import of `source`: refuses a database another source filled, or one that has rows
    /// in any of `tables` without having been filled by an import (a gateway already ran on it). Returns the
    /// progress per table.
    public func importBegin(source: String, tables: [PostgresImportTable]) async throws -> [String: PostgresImportProgress] {
        try await client.withTransaction(logger: logger) { c in
            try await c.query("SELECT pg_advisory_xact_lock(\(Self.importLockKey))", logger: logger)
            try await c.query("""
                CREATE TABLE IF NOT EXISTS faxgate_import_source (
                    source text PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)
                """, logger: logger)
            try await c.query("""
                CREATE TABLE IF NOT EXISTS faxgate_import_progress (
                    source text NOT NULL REFERENCES faxgate_import_source(source), table_name text NOT NULL,
                    last_key bigint, copied bigint NOT NULL DEFAULT 0, finished boolean NOT NULL DEFAULT false,
                    PRIMARY KEY (source, table_name))
                """, logger: logger)
            var sources: [String] = []
            for try await s in try await c.query("SELECT source FROM faxgate_import_source", logger: logger).decode(String.self) {
                sources.append(s)
            }
            if let other = sources.first(where: { $0 != source }) {
                throw ImportRefused(description: "the target database was filled from another source (\(other)); refusing to mix \(source) into it")
            }
            if sources.isEmpty {
                for t in tables {
                    let query = PostgresQuery(unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(Self.quoted(t.name)))")
                    for try await any in try await c.query(query, logger: logger).decode(Bool.self) where any {
                        throw ImportRefused(description: "the target database already has rows in \(t.name) that did not come from \(source); refusing to mix (use an empty database)")
                    }
                }
                try await c.query("INSERT INTO faxgate_import_source (source) VALUES (\(source))", logger: logger)
            }
            var progress: [String: PostgresImportProgress] = [:]
            let rows = try await c.query("SELECT table_name, last_key, copied, finished FROM faxgate_import_progress WHERE source = \(source)", logger: logger)
            for try await (table, lastKey, copied, finished) in rows.decode((String, Int64?, Int64, Bool).self) {
                progress[table] = PostgresImportProgress(lastKey: lastKey, copied: Int(copied), finished: finished)
            }
            return progress
        }
    }

    /// Writes one batch and its resume point in one transaction, so a killed import resumes exactly after the
    /// last committed batch. Rows whose key exists already are left alone (ON CONFLICT DO NOTHING).
    /// Returns how many rows were inserted.
    @discardableResult
    public func importBatch(source: String, table: PostgresImportTable, columns: [String], rows: [[TableValue]],
                            beside: PostgresImportRows? = nil, documents: PostgresImportDocuments? = nil, sourceTable: String, lastKey: Int64?, copied: Int,
                            finished: Bool) async throws -> Int {
        try await client.withTransaction(logger: logger) { c in
            var special: [String: String] = [:]
            if let d = documents {
                let files = d.files.sorted { $0.key < $1.key }.map { [TableValue.text($0.key), .blob($0.value)] }
                _ = try await insert(c, table: d.table, columns: [d.pathColumn, d.bytesColumn], rows: files)
                special[d.referenceColumn] = "(SELECT \(Self.quoted(d.idColumn)) FROM \(Self.quoted(d.table.name)) WHERE \(Self.quoted(d.pathColumn)) = $?::text)"
            }
            let inserted = try await insert(c, table: table, columns: columns, rows: rows, special: special)
            if let beside { _ = try await insert(c, table: beside.table, columns: beside.columns, rows: beside.rows) }
            try await c.query("""
                INSERT INTO faxgate_import_progress (source, table_name, last_key, copied, finished)
                VALUES (\(source), \(sourceTable), \(lastKey), \(Int64(copied)), \(finished))
                ON CONFLICT (source, table_name) DO UPDATE SET last_key = EXCLUDED.last_key, copied = EXCLUDED.copied,
                    finished = EXCLUDED.finished
                """, logger: logger)
            return inserted
        }
    }

    private func insert(_ c: PostgresConnection, table: PostgresImportTable, columns: [String], rows: [[TableValue]],
                        special: [String: String] = [:]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let types = try columns.map { name in
            guard let col = table.column(name) else { throw StorageError("import: \(table.name) has no column \(name)") }
            return col.dataType
        }
        // PostgreSQL takes at most 65535 parameters per statement.
        let perStatement = max(1, 30_000 / max(1, columns.count))
        var inserted = 0
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perStatement)]
            var binds = PostgresBindings(capacity: chunk.count * columns.count)
            var tuples: [String] = []
            var n = 0
            for row in chunk {
                var placeholders: [String] = []
                for (i, value) in row.enumerated() {
                    n += 1
                    if let template = special[columns[i]] {
                        try Self.bind(value, as: "text", into: &binds)
                        placeholders.append(template.replacingOccurrences(of: "$?", with: "$\(n)"))
                    } else {
                        try Self.bind(value, as: types[i], into: &binds)
                        placeholders.append(Self.placeholder(n, type: types[i]))
                    }
                }
                tuples.append("(" + placeholders.joined(separator: ", ") + ")")
            }
            // Fixed text: identifiers from information_schema, quoted; every value is a bind.
            let sql = "INSERT INTO \(Self.quoted(table.name)) (\(columns.map(Self.quoted).joined(separator: ", "))) VALUES "
                + tuples.joined(separator: ", ") + " ON CONFLICT DO NOTHING"
            let result = try await c.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await _ in result {}
            inserted += chunk.count
            start += perStatement
        }
        return inserted
    }

    /// Moves each generated id column's sequence past the copied ids, so the next insert does not collide.
    public func importSetSequences(_ table: PostgresImportTable) async throws {
        for col in table.columns where col.generated {
            let t = Self.quoted(table.name), c = Self.quoted(col.name)
            let sql = """
                SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max(\(c)) FROM \(t)), 0) + 1, false)
                """
            var binds = PostgresBindings()
            binds.append(t)
            binds.append(col.name)
            for try await _ in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {}
        }
    }

    public func importFinished(source: String) async throws {
        try await client.query("UPDATE faxgate_import_source SET finished_at = now() WHERE source = \(source)", logger: logger)
    }

    public func importCount(_ table: PostgresImportTable) async throws -> Int {
        for try await n in try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(Self.quoted(table.name))"), logger: logger).decode(Int64.self) {
            return Int(n)
        }
        return 0
    }

    /// Rows in key order (text keys in byte order, like SQLite's BINARY collation), `columns` only, for the
    /// verification. Values come as their PostgreSQL types; the caller coerces them to the source's kinds.
    public func importRows(_ table: PostgresImportTable, columns: [String], orderBy: [String], afterKey: Int64?, offset: Int,
                           limit: Int) async throws -> [[TableValue]] {
        let select = columns.map { name -> String in
            let type = table.column(name)?.dataType ?? "text"
            return Self.readable(type) ? Self.quoted(name) : Self.quoted(name) + "::text"
        }.joined(separator: ", ")
        let order = orderBy.map { name -> String in
            let type = table.column(name)?.dataType ?? ""
            return type == "text" || type.hasPrefix("character") ? Self.quoted(name) + " COLLATE \"C\"" : Self.quoted(name)
        }.joined(separator: ", ")
        var binds = PostgresBindings()
        let sql: String
        if let afterKey, orderBy.count == 1 {
            binds.append(afterKey)
            binds.append(Int64(limit))
            sql = "SELECT \(select) FROM \(Self.quoted(table.name)) WHERE \(Self.quoted(orderBy[0])) > $1 ORDER BY \(order) LIMIT $2"
        } else {
            binds.append(Int64(limit))
            binds.append(Int64(offset))
            sql = "SELECT \(select) FROM \(Self.quoted(table.name)) ORDER BY \(order) LIMIT $1 OFFSET $2"
        }
        var out: [[TableValue]] = []
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            out.append(try row.map(Self.value))
        }
        return out
    }

    /// (row key, document bytes) in key order for rows whose document lives in `documents.table` (verification).
    public func importReferencedDocuments(_ table: PostgresImportTable, keyColumn: String, documents d: PostgresImportDocuments,
                                          afterKey: Int64, limit: Int) async throws -> [(Int64, [UInt8]?)] {
        let sql = """
            SELECT r.\(Self.quoted(keyColumn)), d.\(Self.quoted(d.bytesColumn)) FROM \(Self.quoted(table.name)) r
            LEFT JOIN \(Self.quoted(d.table.name)) d ON d.\(Self.quoted(d.idColumn)) = r.\(Self.quoted(d.referenceColumn))
            WHERE r.\(Self.quoted(keyColumn)) > $1 ORDER BY r.\(Self.quoted(keyColumn)) LIMIT $2
            """
        var binds = PostgresBindings()
        binds.append(afterKey)
        binds.append(Int64(limit))
        var out: [(Int64, [UInt8]?)] = []
        for try await (key, bytes) in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode((Int64, Data?).self) {
            out.append((key, bytes.map { [UInt8]($0) }))
        }
        return out
    }

    // MARK: Values

    static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    static func readable(_ type: String) -> Bool {
        ["bigint", "integer", "smallint", "boolean", "text", "bytea", "double precision", "real",
         "timestamp with time zone", "timestamp without time zone", "character varying", "character"].contains(type)
    }

    static func placeholder(_ n: Int, type: String) -> String {
        switch type {
        case "json", "jsonb", "uuid", "numeric", "date", "inet": return "$\(n)::\(type)"
        default: return "$\(n)"
        }
    }

    /// Binds a source value as the target column's type wants it.
    static func bind(_ value: TableValue, as type: String, into binds: inout PostgresBindings) throws {
        if case .null = value { binds.appendNull(); return }
        switch type {
        case "bigint", "integer", "smallint":
            switch value {
            case .integer(let i): binds.append(i)
            case .bool(let b): binds.append(Int64(b ? 1 : 0))
            case .real(let d): binds.append(Int64(d))
            case .text(let s): guard let i = Int64(s) else { throw StorageError("import: '\(s)' is not an integer") }; binds.append(i)
            default: throw StorageError("import: cannot store \(value) as \(type)")
            }
        case "boolean":
            switch value {
            case .bool(let b): binds.append(b)
            case .integer(let i): binds.append(i != 0)
            default: throw StorageError("import: cannot store \(value) as boolean")
            }
        case "timestamp with time zone", "timestamp without time zone":
            switch value {
            case .date(let d): binds.append(d)
            case .text(let s): guard let d = TableCanonical.parseDate(s) else { throw StorageError("import: '\(s)' is not a date") }; binds.append(d)
            case .real(let d): binds.append(Date(timeIntervalSince1970: d))
            default: throw StorageError("import: cannot store \(value) as \(type)")
            }
        case "bytea":
            switch value {
            case .blob(let b): try binds.append(Data(b))
            case .text(let s): try binds.append(Data(s.utf8))
            default: throw StorageError("import: cannot store \(value) as bytea")
            }
        case "double precision", "real":
            switch value {
            case .real(let d): binds.append(d)
            case .integer(let i): binds.append(Double(i))
            default: throw StorageError("import: cannot store \(value) as \(type)")
            }
        default:
            switch value {
            case .text(let s): binds.append(s)
            case .integer(let i): binds.append(String(i))
            case .real(let d): binds.append(String(d))
            case .bool(let b): binds.append(b ? "true" : "false")
            case .date(let d): binds.append(ISO8601DateFormatter().string(from: d))
            case .blob(let b):
                guard let s = String(validating: b, as: UTF8.self) else { throw StorageError("import: bytes are not text for a \(type) column") }
                binds.append(s)
            case .null: binds.appendNull()
            }
        }
    }

    static func value(_ cell: PostgresCell) throws -> TableValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .timestamptz, .timestamp: return .date(try cell.decode(Date.self))
        case .bytea: return .blob([UInt8](try cell.decode(Data.self)))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        default: return .text(try cell.decode(String.self))
        }
    }
}

// MARK: Bench

extension PostgresStorage {
    /// `faxgate bench storage`: `count - 1` copies of the call `template` in one INSERT … SELECT over
    /// generate_series, each 3 minutes older than the one before, numbers and kinds varied like `bench web` does on
    /// SQLite. Columns by name from the catalog (the call table's shape is the CALLS area's).
    public func benchFillCalls(template: Int64, count: Int) async throws {
        guard count > 1 else { return }
        let tables = try await importTables()
        guard let table = tables.first(where: { ["call", "calls"].contains(TableCanonical.normalize($0.name)) }) else {
            throw StorageError("bench: no call table")
        }
        let overrides: [String: String] = [
            "startedat": "t.%@ - g.i * interval '3 minutes'",
            "endedat": "t.%@ - g.i * interval '3 minutes'",
            "kind": "CASE WHEN g.i % 10 = 0 THEN 'voice' ELSE t.%@ END",
            "outcome": "CASE WHEN g.i % 40 = 0 THEN 'partial' WHEN g.i % 97 = 0 THEN 'failed' ELSE t.%@ END",
            "callingnumber": "'30' || lpad(((g.i * 7919) % 10000000)::text, 7, '0')",
            "callednumber": "CASE WHEN g.i % 5 = 0 THEN '200' ELSE t.%@ END",
            "extensionname": "CASE WHEN g.i % 5 = 0 THEN 'Labor' ELSE t.%@ END",
            "pages": "1 + g.i % 6", "spoolpath": "NULL", "mailmessageid": "NULL",
        ]
        let columns = table.columns.filter { !$0.generated }
        let exprs = columns.map { c -> String in
            let q = Self.quoted(c.name)
            guard let o = overrides[TableCanonical.normalize(c.name)] else { return "t." + q }
            return o.replacingOccurrences(of: "%@", with: q)
        }
        let sql = """
            INSERT INTO \(Self.quoted(table.name)) (\(columns.map { Self.quoted($0.name) }.joined(separator: ", ")))
            SELECT \(exprs.joined(separator: ", ")) FROM \(Self.quoted(table.name)) AS t, generate_series(1, $2::bigint - 1) AS g(i)
            WHERE t.id = $1 ORDER BY g.i
            """
        var binds = PostgresBindings()
        binds.append(template)
        binds.append(Int64(count))
        for try await _ in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {}
        for try await _ in try await client.query(PostgresQuery(unsafeSQL: "ANALYZE \(Self.quoted(table.name))"), logger: logger) {}
    }

    /// Whether every application table is empty (the bench refuses a database with data in it).
    public func benchIsEmpty() async throws -> Bool {
        for t in try await importTables() where try await importCount(t) > 0 { return false }
        return true
    }
}
