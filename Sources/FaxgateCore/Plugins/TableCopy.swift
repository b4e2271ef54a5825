import Crypto
import Foundation

// Storage-neutral table rows for `faxgate storage migrate`: the source plugin exports rows as `TableValue`s,
// the target imports them, and both sides are checksummed over the same canonical rendering, so a row that
// changed type or lost precision on the way is found, not assumed.

/// One cell, typed by what the column means (a SQLite DATETIME text and a PostgreSQL timestamptz are both `.date`).
public enum TableValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case bool(Bool)
    case date(Date)
}

/// What a column holds, independent of the plugin's spelling of the type.
public enum TableColumnKind: String, Sendable {
    case integer, real, text, blob, bool, date
}

public struct TableColumn: Sendable, Hashable {
    public var name: String
    public var kind: TableColumnKind
    /// Position in the primary key (1-based), 0 when not part of it.
    public var primaryKey: Int
    public init(name: String, kind: TableColumnKind, primaryKey: Int = 0) {
        self.name = name; self.kind = kind; self.primaryKey = primaryKey
    }
}

/// A table of the source, with what the copy needs to order it.
public struct TableDescription: Sendable {
    public var name: String
    public var columns: [TableColumn]
    /// Tables this one references (copied first so foreign keys hold on the target).
    public var parents: [String]
    public init(name: String, columns: [TableColumn], parents: [String]) {
        self.name = name; self.columns = columns; self.parents = parents
    }
    /// The single integer primary key, when there is one: batches are then keyset pages on it.
    public var integerKey: String? {
        let pk = columns.filter { $0.primaryKey > 0 }
        return pk.count == 1 && pk[0].kind == .integer ? pk[0].name : nil
    }
    public var keyColumns: [String] {
        let pk = columns.filter { $0.primaryKey > 0 }.sorted { $0.primaryKey < $1.primaryKey }.map(\.name)
        return pk.isEmpty ? columns.map(\.name) : pk
    }
}

public enum TableCanonical {
    /// Column and table names compared across plugins: case and underscores do not matter
    /// (`startedAt`, `startedat`, `started_at` are one name).
    public static func normalize(_ name: String) -> String {
        name.lowercased().filter { $0 != "_" }
    }

    /// Brings a value read from either side into the kind the source column has, so the renderings compare.
    public static func coerce(_ value: TableValue, to kind: TableColumnKind) -> TableValue {
        switch (value, kind) {
        case (.null, _): return .null
        case (.integer(let i), .bool): return .bool(i != 0)
        case (.bool(let b), .integer): return .integer(b ? 1 : 0)
        case (.integer(let i), .real): return .real(Double(i))
        case (.real(let d), .integer) where d == d.rounded(): return .integer(Int64(d))
        case (.text(let s), .date): return parseDate(s).map { .date($0) } ?? value
        case (.real(let d), .date): return .date(Date(timeIntervalSince1970: d))
        case (.text(let s), .blob): return .blob(Array(s.utf8))
        case (.blob(let b), .text): return String(validating: b, as: UTF8.self).map { .text($0) } ?? value
        case (.text(let s), .integer): return Int64(s).map { .integer($0) } ?? value
        default: return value
        }
    }

    /// SQLite's date texts (GRDB writes "yyyy-MM-dd HH:mm:ss.SSS" in UTC; also accepts ISO 8601 with T/Z).
    public static func parseDate(_ text: String) -> Date? {
        var s = text.replacingOccurrences(of: "T", with: " ")
        if s.hasSuffix("Z") { s.removeLast() }
        let parts = s.split(separator: " ")
        guard parts.count == 2 else {
            if parts.count == 1, parts[0].count == 10 { return parseDate(s + " 00:00:00") }
            return nil
        }
        let d = parts[0].split(separator: "-").compactMap { Int($0) }
        let timeParts = parts[1].split(separator: ":")
        guard d.count == 3, timeParts.count >= 2, let h = Int(timeParts[0]), let m = Int(timeParts[1]) else { return nil }
        var seconds = 0.0
        if timeParts.count == 3 { guard let sec = Double(timeParts[2]) else { return nil }; seconds = sec }
        var c = DateComponents()
        c.year = d[0]; c.month = d[1]; c.day = d[2]; c.hour = h; c.minute = m; c.second = 0
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let base = calendar.date(from: c) else { return nil }
        return base.addingTimeInterval(seconds)
    }

    /// Milliseconds: SQLite keeps dates to the millisecond, PostgreSQL to the microsecond.
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// One row's canonical bytes: each value tagged with its kind and length-prefixed, in the given column order.
    public static func render(_ values: [TableValue], into out: inout [UInt8]) {
        for v in values {
            switch v {
            case .null: out += Array("N;".utf8)
            case .integer(let i): out += Array("I\(i);".utf8)
            case .real(let d): out += Array("R\(d.bitPattern);".utf8)
            case .bool(let b): out += Array(b ? "Bt;".utf8 : "Bf;".utf8)
            case .date(let d): out += Array("D\(milliseconds(d));".utf8)
            case .text(let s): let u = Array(s.utf8); out += Array("T\(u.count):".utf8); out += u; out.append(0x3B)
            case .blob(let b): out += Array("X\(b.count):".utf8); out += b; out.append(0x3B)
            }
        }
        out.append(0x0A)
    }
}

/// SHA-256 over the canonical rendering of every row, in key order; both sides of a copy compute it.
public struct TableChecksum {
    private var hasher = SHA256()
    public private(set) var rows = 0
    public init() {}
    public mutating func add(_ values: [TableValue]) {
        var bytes: [UInt8] = []
        TableCanonical.render(values, into: &bytes)
        hasher.update(data: bytes)
        rows += 1
    }
    public var hex: String {
        hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
