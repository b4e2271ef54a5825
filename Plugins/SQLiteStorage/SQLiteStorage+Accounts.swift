import Foundation
import FaxgateCore
import GRDB

/// Web accounts, sessions, the audit trail, read marks and the filtered journal (AccountStorage).
extension SQLiteStorage {
    /// Migrations are only ever added, never edited once released.
    static func registerAccountMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("web-v1-accounts-sessions-audit-reads") { db in
            try db.create(table: "webUser") { t in
                t.autoIncrementedPrimaryKey("id")
                // NOCASE: "Anna" and "anna" are one login, whatever the caller normalised.
                t.column("name", .text).notNull().unique().collate(.nocase)
                t.column("role", .text).notNull().check { WebUser.Role.allCases.map(\.rawValue).contains($0) }
                // JSON array of extension names: read whole with the user, never queried by element.
                t.column("extensions", .text).notNull()
                t.column("passwordHash", .text).notNull()
                t.column("mustChangePassword", .boolean).notNull()
                t.column("totpSecret", .blob)
                t.column("totpLastCounter", .integer)
                t.column("recoveryCodeHashes", .text).notNull()
                t.column("disabled", .boolean).notNull()
                t.column("failedLogins", .integer).notNull()
                t.column("lockedUntil", .datetime)
                t.column("language", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("passwordChangedAt", .datetime).notNull()
                // Kept by storage: set when a session is inserted (a login), never by updateUser.
                t.column("lastLoginAt", .datetime)
            }
            try db.create(table: "webSession") { t in
                t.primaryKey("idHash", .text)
                t.column("userID", .integer).notNull().indexed().references("webUser", onDelete: .cascade)
                t.column("createdAt", .datetime).notNull().indexed()
                t.column("lastSeenAt", .datetime).notNull().indexed()
                t.column("secondFactorVerified", .boolean).notNull()
                t.column("csrfToken", .text).notNull()
                t.column("clientAddress", .text).notNull()
            }
            // Actor is a name, not a foreign key: the trail outlives a removed user.
            try db.create(table: "auditEntry") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull().indexed()
                t.column("actor", .text).notNull()
                t.column("clientAddress", .text).notNull()
                t.column("action", .text).notNull()
                t.column("target", .text).notNull()
                t.column("detail", .text).notNull()
            }
            try db.create(index: "auditEntry_on_actor_id", on: "auditEntry", columns: ["actor", "id"])
            try db.create(index: "auditEntry_on_action_id", on: "auditEntry", columns: ["action", "id"])
            // Cascades: retention deleting a call, or removing a user, takes the read marks with it.
            try db.create(table: "callRead", options: .withoutRowID) { t in
                t.column("userID", .integer).notNull().references("webUser", onDelete: .cascade)
                t.column("callID", .integer).notNull().indexed().references("call", onDelete: .cascade)
                t.column("readAt", .datetime).notNull()
                t.primaryKey(["userID", "callID"])
            }
            // The web lists page newest first by id within a user's extensions: one index range per extension.
            try db.create(index: "call_on_extensionName_id", on: "call", columns: ["extensionName", "id"])
            try db.create(index: "job_on_extensionName_id", on: "job", columns: ["extensionName", "id"])
        }
        // Lists are newest first by time (as the journal and the admin page's merge of calls and jobs): with
        // (extensionName, time) and (time) a page is one index range, also with a date range; (…, id) made a wide
        // date range sort every matching row (1.4 s at 1,000,000 calls).
        m.registerMigration("web-v2-list-indexes-by-time") { db in
            try db.drop(index: "call_on_extensionName_id")
            try db.drop(index: "job_on_extensionName_id")
            try db.create(index: "call_on_extensionName_startedAt", on: "call", columns: ["extensionName", "startedAt"])
            try db.create(index: "job_on_createdAt", on: "job", columns: ["createdAt"])
            try db.create(index: "job_on_extensionName_createdAt", on: "job", columns: ["extensionName", "createdAt"])
        }
    }

    // MARK: Users

    public func insertUser(_ user: WebUser) async throws -> WebUser {
        do {
            return try await pool.write { db in
                var row = try WebUserRow(user)
                row.id = nil
                try row.insert(db)
                return try row.user()
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw DuplicateUserName(name: user.name)
        }
    }

    public func updateUser(_ user: WebUser) async throws {
        guard let id = user.id else { throw StorageError("updateUser needs a user with an id") }
        do {
            try await pool.write { db in
                let row = try WebUserRow(user)
                // lastLoginAt is storage's own (see insertSession): a stale copy of the user must not reset it.
                let columns = Set(WebUserRow.CodingKeys.allCases.map(\.rawValue)).subtracting(["id", "lastLoginAt"])
                try row.update(db, columns: columns)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw DuplicateUserName(name: user.name)
        } catch is RecordError {
            throw StorageError("user \(id) does not exist")
        }
    }

    public func user(id: Int64) async throws -> WebUser? {
        try await pool.read { db in try WebUserRow.fetchOne(db, key: id)?.user() }
    }

    public func user(name: String) async throws -> WebUser? {
        try await pool.read { db in try WebUserRow.filter(Column("name") == name).fetchOne(db)?.user() }
    }

    public func users() async throws -> [WebUser] {
        try await pool.read { db in
            guard try db.tableExists("webUser") else { return [] }
            return try WebUserRow.order(Column("name")).fetchAll(db).map { try $0.user() }
        }
    }

    public func deleteUser(id: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM webUser WHERE id = ?", arguments: [id])
        }
    }

    // MARK: Sessions

    public func insertSession(_ session: WebSession) async throws {
        try await pool.write { db in
            try WebSessionRow(session).insert(db)
            try db.execute(sql: "UPDATE webUser SET lastLoginAt = ? WHERE id = ?", arguments: [session.createdAt, session.userID])
        }
    }

    public func session(idHash: String) async throws -> WebSession? {
        try await pool.read { db in try WebSessionRow.fetchOne(db, key: idHash)?.session }
    }

    public func updateSession(_ session: WebSession) async throws {
        try await pool.write { db in
            do { try WebSessionRow(session).update(db) } catch is RecordError {
                throw StorageError("session does not exist (ended meanwhile)")
            }
        }
    }

    public func deleteSession(idHash: String) async throws {
        try await pool.write { db in try db.execute(sql: "DELETE FROM webSession WHERE idHash = ?", arguments: [idHash]) }
    }

    @discardableResult
    public func deleteSessions(userID: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM webSession WHERE userID = ?", arguments: [userID])
            return db.changesCount
        }
    }

    @discardableResult
    public func purgeSessions(lastSeenBefore: Date, createdBefore: Date) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM webSession WHERE lastSeenAt < ? OR createdAt < ?", arguments: [lastSeenBefore, createdBefore])
            return db.changesCount
        }
    }

    // MARK: Audit

    public func appendAudit(_ entry: AuditEntry) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO auditEntry (at, actor, clientAddress, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [entry.at, entry.actor, entry.clientAddress, entry.action, entry.target, entry.detail])
        }
    }

    public func auditEntries(limit: Int, beforeID: Int64?, actor: String?, action: String?) async throws -> [AuditEntry] {
        try await pool.read { db in
            guard try db.tableExists("auditEntry") else { return [] }
            var sql = "SELECT * FROM auditEntry WHERE 1"
            var args: StatementArguments = []
            if let beforeID { sql += " AND id < ?"; args += [beforeID] }
            if let actor { sql += " AND actor = ?"; args += [actor] }
            if let action {
                // A prefix as a range (BINARY order), so the (action, id) index serves it; U+10FFFF sorts after
                // every character that can follow the prefix.
                sql += " AND action >= ? AND action < ?"; args += [action, action + "\u{10FFFF}"]
            }
            sql += " ORDER BY id DESC LIMIT ?"; args += [max(0, limit)]
            return try Row.fetchAll(db, sql: sql, arguments: args).map { r in
                AuditEntry(id: r["id"], at: r["at"], actor: r["actor"], clientAddress: r["clientAddress"], action: r["action"],
                           target: r["target"], detail: r["detail"])
            }
        }
    }

    // MARK: Read marks

    public func markRead(callID: Int64, userID: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO callRead (userID, callID, readAt) VALUES (?, ?, ?)",
                           arguments: [userID, callID, Date()])
        }
    }

    public func readCallIDs(userID: Int64, among callIDs: [Int64]) async throws -> Set<Int64> {
        guard !callIDs.isEmpty else { return [] }
        return try await pool.read { db in
            var found: Set<Int64> = []
            // Chunks stay far below SQLite's bound-parameter limit.
            for start in stride(from: 0, to: callIDs.count, by: 500) {
                let chunk = Array(callIDs[start..<min(start + 500, callIDs.count)])
                let marks = chunk.map { _ in "?" }.joined(separator: ",")
                let ids = try Int64.fetchAll(db, sql: "SELECT callID FROM callRead WHERE userID = ? AND callID IN (\(marks))",
                                             arguments: StatementArguments([userID] + chunk))
                found.formUnion(ids)
            }
            return found
        }
    }

    // MARK: Filtered lists

    public func searchCalls(_ query: CallQuery) async throws -> [CallRecord] {
        guard let filter = ListFilter(query) else { return [] }
        return try await pool.read { db in
            let page = try filter.pageSQL(db, table: "call", time: "startedAt", beforeID: query.beforeID, limit: query.limit)
            return try CallRow.fetchAll(db, sql: page.sql, arguments: page.arguments).map(\.record)
        }
    }

    /// SQLite's plan for the page `searchCalls` reads (tests check that it is index ranges, not a sort of the table).
    func callPagePlan(_ query: CallQuery) async throws -> [String] {
        guard let filter = ListFilter(query) else { return [] }
        return try await pool.read { db in
            let page = try filter.pageSQL(db, table: "call", time: "startedAt", beforeID: query.beforeID, limit: query.limit)
            return try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + page.sql, arguments: page.arguments).map { $0["detail"] as String }
        }
    }

    public func countCalls(_ query: CallQuery) async throws -> Int {
        guard let filter = ListFilter(query) else { return 0 }
        let count = filter.countSQL(table: "call")
        return try await pool.read { db in try Int.fetchOne(db, sql: count.sql, arguments: count.arguments) ?? 0 }
    }

    public func searchJobs(_ query: JobQuery) async throws -> [FaxJob] {
        guard let filter = ListFilter(query) else { return [] }
        return try await pool.read { db in
            guard try db.tableExists("job") else { return [] }
            let page = try filter.pageSQL(db, table: "job", time: "createdAt", beforeID: query.beforeID, limit: query.limit)
            return try JobRow.fetchAll(db, sql: page.sql, arguments: page.arguments).map(\.job)
        }
    }

    /// `%text%` with LIKE's own wildcards and the escape character taken literally.
    static func likePattern(_ text: String) -> String {
        var out = "%"
        for c in text {
            if c == "%" || c == "_" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "%"
    }

    /// The digits of a search text that looks like a telephone number (digits with spaces, `+ - . / ( )`), without
    /// leading zeros: stored numbers carry no trunk or international prefix when the network typed them, so
    /// "030 1234567" must find "301234567". nil when the text is not number-like.
    static func searchDigits(_ text: String) -> String? {
        let allowed = Set("0123456789 +-./()")
        guard text.allSatisfy({ allowed.contains($0) }) else { return nil }
        let digits = String(text.filter { ("0"..."9").contains($0) }.drop { $0 == "0" })
        return digits.isEmpty ? nil : digits
    }
}

/// A list query as SQL: the WHERE clause of its filters, and the extension restriction, which the page query turns
/// into one index range per extension. Lists are newest first by time, then id; paging continues after the row
/// `beforeID` in that order, so the (extensionName, time) and (time) indexes deliver a page without sorting the
/// table, whatever the date range (measured with 1,000,000 calls: every page query under 2 ms).
private struct ListFilter {
    struct Statement {
        var sql: String
        var arguments: StatementArguments = []
    }
    var conditions: [String] = []
    var arguments: StatementArguments = []
    /// nil = all extensions (and rows without one); otherwise the sorted names, never empty.
    var extensions: [String]?

    var whereSQL: String { conditions.isEmpty ? "1" : conditions.joined(separator: " AND ") }

    /// nil when the query cannot match anything (an empty set restricts to nothing, never to everything).
    init?(_ q: CallQuery) {
        guard restrict(to: q.extensions) else { return nil }
        if let direction = q.direction { add("direction = ?", [direction.rawValue]) }
        guard oneOf("kind", q.kinds.map { Set($0.map(\.rawValue)) }), oneOf("state", q.states.map { Set($0.map(\.rawValue)) }) else { return nil }
        if let text = q.text?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            var alternatives = ["remoteStationID LIKE ? ESCAPE '\\'"]
            var args: StatementArguments = [SQLiteStorage.likePattern(text)]
            if let digits = SQLiteStorage.searchDigits(text) {
                alternatives.append("callingNumber LIKE ? ESCAPE '\\'")
                args += [SQLiteStorage.likePattern(digits)]
            }
            add("(" + alternatives.joined(separator: " OR ") + ")", args)
        }
        // Half-open: from ≤ startedAt < to.
        if let from = q.from { add("startedAt >= ?", [from]) }
        if let to = q.to { add("startedAt < ?", [to]) }
        if let minPages = q.minPages { add("pages >= ?", [minPages]) }
    }

    init?(_ q: JobQuery) {
        guard restrict(to: q.extensions), oneOf("state", q.states.map { Set($0.map(\.rawValue)) }) else { return nil }
        if let text = q.text?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            var alternatives = ["number LIKE ? ESCAPE '\\'", "sender LIKE ? ESCAPE '\\'"]
            var args: StatementArguments = [SQLiteStorage.likePattern(text), SQLiteStorage.likePattern(text)]
            if let digits = SQLiteStorage.searchDigits(text) {
                alternatives += ["number LIKE ? ESCAPE '\\'", "dialString LIKE ? ESCAPE '\\'"]
                args += [SQLiteStorage.likePattern(digits), SQLiteStorage.likePattern(digits)]
            }
            add("(" + alternatives.joined(separator: " OR ") + ")", args)
        }
        if let from = q.from { add("createdAt >= ?", [from]) }
        if let to = q.to { add("createdAt < ?", [to]) }
    }

    private mutating func restrict(to names: Set<String>?) -> Bool {
        guard let names else { return true }
        extensions = names.sorted()
        return !names.isEmpty
    }

    private mutating func oneOf(_ column: String, _ values: Set<String>?) -> Bool {
        guard let values else { return true }
        guard !values.isEmpty else { return false }
        add("\(column) IN (\(values.map { _ in "?" }.joined(separator: ",")))", StatementArguments(values.sorted()))
        return true
    }

    private mutating func add(_ condition: String, _ args: StatementArguments) {
        conditions.append(condition)
        arguments += args
    }

    func countSQL(table: String) -> Statement {
        var sql = "SELECT COUNT(*) FROM \(table) WHERE \(whereSQL)"
        var args = arguments
        if let extensions {
            sql += " AND extensionName IN (\(extensions.map { _ in "?" }.joined(separator: ",")))"
            args += StatementArguments(extensions)
        }
        return Statement(sql: sql, arguments: args)
    }

    /// One page, newest first. Per extension: its newest `limit` rows from the (extensionName, time) index, merged;
    /// the cost is bounded by extensions × limit rows however many rows exist (an IN list would sort every match).
    func pageSQL(_ db: Database, table: String, time: String, beforeID: Int64?, limit: Int) throws -> Statement {
        var inner = whereSQL
        var innerArgs = arguments
        if let beforeID {
            // The row's place in the order. If retention removed it meanwhile its time is unknown: continue with the
            // older ids (ids follow arrival, which for calls and jobs is their time).
            if let at = try Date.fetchOne(db, sql: "SELECT \(time) FROM \(table) WHERE id = ?", arguments: [beforeID]) {
                inner += " AND (\(time), id) < (?, ?)"
                innerArgs += [at, beforeID]
            } else {
                inner += " AND id < ?"
                innerArgs += [beforeID]
            }
        }
        let order = "ORDER BY \(time) DESC, id DESC LIMIT ?"
        let limit = max(0, limit)
        guard let extensions else {
            return Statement(sql: "SELECT * FROM \(table) WHERE \(inner) \(order)", arguments: innerArgs + [limit])
        }
        let union = extensions.map { _ in "SELECT id FROM (SELECT id FROM \(table) WHERE extensionName = ? AND \(inner) \(order))" }
            .joined(separator: " UNION ALL ")
        var args: StatementArguments = []
        for name in extensions { args += [name]; args += innerArgs; args += [limit] }
        return Statement(sql: "SELECT * FROM \(table) WHERE id IN (\(union)) \(order)", arguments: args + [limit])
    }
}

struct WebUserRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "webUser"
    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, role, extensions, passwordHash, mustChangePassword, totpSecret, totpLastCounter, recoveryCodeHashes
        case disabled, failedLogins, lockedUntil, language, createdAt, passwordChangedAt, lastLoginAt
    }
    var id: Int64?
    var name: String
    var role: String
    var extensions: String
    var passwordHash: String
    var mustChangePassword: Bool
    var totpSecret: Data?
    var totpLastCounter: Int64?
    var recoveryCodeHashes: String
    var disabled: Bool
    var failedLogins: Int
    var lockedUntil: Date?
    var language: String?
    var createdAt: Date
    var passwordChangedAt: Date
    var lastLoginAt: Date?

    init(_ u: WebUser) throws {
        id = u.id; name = u.name; role = u.role.rawValue
        extensions = String(decoding: try JSONEncoder().encode(u.extensions), as: UTF8.self)
        passwordHash = u.passwordHash; mustChangePassword = u.mustChangePassword; totpSecret = u.totpSecret.map { Data($0) }
        totpLastCounter = u.totpLastCounter
        recoveryCodeHashes = String(decoding: try JSONEncoder().encode(u.recoveryCodeHashes), as: UTF8.self)
        disabled = u.disabled; failedLogins = u.failedLogins; lockedUntil = u.lockedUntil; language = u.language
        createdAt = u.createdAt; passwordChangedAt = u.passwordChangedAt; lastLoginAt = u.lastLoginAt
    }

    func user() throws -> WebUser {
        // An unknown role reads as the lesser one: never grant admin by accident.
        var u = WebUser(id: id, name: name, role: WebUser.Role(rawValue: role) ?? .user,
                        extensions: try JSONDecoder().decode([String].self, from: Data(extensions.utf8)), passwordHash: passwordHash,
                        mustChangePassword: mustChangePassword, totpSecret: totpSecret.map { [UInt8]($0) },
                        totpLastCounter: totpLastCounter,
                        recoveryCodeHashes: try JSONDecoder().decode([String].self, from: Data(recoveryCodeHashes.utf8)),
                        disabled: disabled, failedLogins: failedLogins, lockedUntil: lockedUntil, language: language,
                        createdAt: createdAt, passwordChangedAt: passwordChangedAt)
        u.lastLoginAt = lastLoginAt
        return u
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

struct WebSessionRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "webSession"
    var idHash: String
    var userID: Int64
    var createdAt: Date
    var lastSeenAt: Date
    var secondFactorVerified: Bool
    var csrfToken: String
    var clientAddress: String

    init(_ s: WebSession) {
        idHash = s.idHash; userID = s.userID; createdAt = s.createdAt; lastSeenAt = s.lastSeenAt
        secondFactorVerified = s.secondFactorVerified; csrfToken = s.csrfToken; clientAddress = s.clientAddress
    }

    var session: WebSession {
        WebSession(idHash: idHash, userID: userID, createdAt: createdAt, lastSeenAt: lastSeenAt,
                   secondFactorVerified: secondFactorVerified, csrfToken: csrfToken, clientAddress: clientAddress)
    }
}
