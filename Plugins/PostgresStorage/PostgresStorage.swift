import FaxgateCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO

// Shared helpers for the area files (CALLS helper). Use them instead of `client.query`/`client.withTransaction`
// so every operation has a deadline (an unreachable database fails in `operationTimeout`, not after the pool's
// ~70 s of retries) and errors say what failed:
//   try await tx("what") { c in … }          one transaction; an error thrown inside comes out as itself
//                                             (JobStateConflict, StorageError), not as PostgresTransactionError
//   try await rows("what", "SELECT … \(x)")  -> [PostgresRandomAccessRow], on the pool, all rows collected
//   try await run("what", "UPDATE …")         statement on the pool, rows discarded
//   try await c.rows("…", logger) / try await c.run("…", logger)   the same on a transaction's connection
//   try await withDeadline("what") { … }     any other body (withConnection, COPY, …)
//   let v: Int64? = try row.value("callID")   decode by column name; a missing column throws StorageError
//   PostgresStorage.isUniqueViolation(error) / .sqlState(error)   what a server error was
//   connectionSettings (public), operationTimeout (init parameter, default 20 s)
// Tables: callMigrations create call, callEvent, document AND intake (jobs reference intake.id); intake has the
// extra column rawMessage bytea (the order mail, so any node can read it).
// Conventions: identifiers unquoted in SQL (write the SQLite plugin's camelCase names, PostgreSQL folds them to
// lowercase, `row.value` folds too). Bytes: bind `Data(bytes)` (a [UInt8] would be a "char" array), decode Data.
// Times: bind Date (timestamptz). JSON: text. Errors: StorageError ("database unreachable: …" when no connection).

/// `Storage` over PostgreSQL (postgres-nio): several gateway nodes share one database, one queue and the
/// documents themselves (no shared file system). Every state change is one short transaction with its history
/// event; nothing holds a transaction open across a call (claims and leases instead, see `claimJobs`).
///
/// The client's connection pool runs in a task this object owns; `close()` (or deinit) ends it.
public final class PostgresStorage: Storage {
    let client: PostgresClient
    let logger: Logger
    /// This node's id (leases, the journal).
    public let node: String
    /// Local spool of this node: files the plugin reads once to store them in the database (rendered jobs,
    /// raw order mails) and the retention categories of files that stay local (logs, the outbox).
    let spoolDirectory: String
    /// Longest an operation (waiting for a connection included) may take before it fails with "database
    /// unreachable": the pool alone would keep retrying a dead server for about 70 s while the caller hangs.
    public let operationTimeout: Duration
    /// Where the database is, for error messages (never the password).
    let endpoint: String
    /// How this handle connects (node coordination opens its own session with the same settings).
    public let connectionSettings: PostgresConnectionSettings
    private let connectionFailures: ConnectionFailureMemo
    private let runTask: Task<Void, Never>

    public init(connection: PostgresConnectionSettings, node: String, spoolDirectory: String, logger: Logger,
                operationTimeout: Duration = .seconds(20)) {
        // The pool only logs why it cannot connect; this copy of the logger remembers it for the deadline's error.
        let failures = ConnectionFailureMemo()
        var background = logger
        background.handler = ConnectionFailureCapture(inner: logger.handler, memo: failures)
        self.connectionFailures = failures
        self.client = PostgresClient(configuration: connection.clientConfiguration, backgroundLogger: background)
        self.logger = logger
        self.node = node
        self.spoolDirectory = spoolDirectory
        self.operationTimeout = operationTimeout
        self.connectionSettings = connection
        self.endpoint = "\(connection.host):\(connection.port)/\(connection.database)"
        let client = self.client
        self.runTask = Task { await client.run() }
    }

    deinit { runTask.cancel() }

    /// Ends the connection pool. Queries after this fail.
    public func close() { runTask.cancel() }

    /// The postgres-nio release this plugin is built and tested with (Package.resolved pins it; the library does not
    /// report its own version at run time).
    public static let clientLibraryVersion = "1.33.2"

    /// The server's version string (`faxgate version`, `config check`).
    public func serverVersion() async throws -> String {
        let r = try await rows("server version", "SELECT version() AS v")
        guard let v: String = try r.first?.value("v") else { throw StorageError("postgres: SELECT version() returned no row") }
        return v
    }

    // MARK: Shared helpers (see the comment at the top of the file)

    /// Runs `body` but returns (throws) after `timeout` (default `operationTimeout`) at the latest. The body is
    /// cancelled then; a body that does not notice (a query on a connection whose peer vanished) finishes in
    /// the background, the caller is not kept waiting for it.
    func withDeadline<T: Sendable>(_ what: String, timeout: Duration? = nil,
                                   _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let limit = timeout ?? operationTimeout
        let race = DeadlineRace<T>()
        let work = Task {
            do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            if !Task.isCancelled {
                race.finish(.failure(DeadlineExceeded()))
                work.cancel()
            }
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { race.install($0) }
            } onCancel: {
                work.cancel()
                race.finish(.failure(CancellationError()))
            }
        } catch is DeadlineExceeded {
            // The pool's last failed connection attempt, if recent, is the likely reason (refused, TLS, password).
            let reason = connectionFailures.recent(within: limit + .seconds(10)).map { " (last connection attempt: \($0))" } ?? ""
            throw StorageError("database unreachable: \(what): no answer from \(endpoint) within \(Self.seconds(limit)) s\(reason)")
        } catch {
            throw Self.describe(error, what: what, endpoint: endpoint)
        }
    }

    /// One transaction under the deadline. Errors thrown by `body` come out unwrapped.
    func tx<T: Sendable>(_ what: String, timeout: Duration? = nil,
                         _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withDeadline(what, timeout: timeout) { [client, logger] in
            try await client.withTransaction(logger: logger) { c in try await body(c) }
        }
    }

    /// A query on the pool; all rows collected (keep results small: pages, not tables).
    func rows(_ what: String, _ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await withDeadline(what) { [client, logger] in
            var out: [PostgresRandomAccessRow] = []
            for try await row in try await client.query(query, logger: logger) { out.append(row.makeRandomAccess()) }
            return out
        }
    }

    /// A statement on the pool; rows it returns are read and dropped.
    func run(_ what: String, _ query: PostgresQuery) async throws {
        _ = try await rows(what, query)
    }

    /// The server's SQLSTATE of an error (e.g. "23505"), nil when it is not a server error.
    static func sqlState(_ error: any Error) -> String? {
        if let e = error as? PSQLError { return e.serverInfo?[.sqlState] }
        if let e = error as? PostgresTransactionError, let inner = e.closureError ?? e.commitError ?? e.beginError { return sqlState(inner) }
        return nil
    }

    static func isUniqueViolation(_ error: any Error) -> Bool { sqlState(error) == "23505" }

    /// A storage error that says what failed, without the bound values (they may be a stranger's data).
    static func describe(_ error: any Error, what: String, endpoint: String) -> any Error {
        switch error {
        case is StorageError, is JobStateConflict, is CancellationError:
            return error
        case let e as PostgresTransactionError:
            guard let inner = e.closureError ?? e.beginError ?? e.commitError else { return StorageError("postgres: \(what): transaction failed") }
            return describe(inner, what: what, endpoint: endpoint)
        case let e as PSQLError:
            if e.code == .server {
                let message = e.serverInfo?[.message] ?? "server error"
                let detail = e.serverInfo?[.detail].map { " (\($0))" } ?? ""
                return StorageError("postgres: \(what): \(message)\(detail) [\(e.serverInfo?[.sqlState] ?? "?")]")
            }
            if e.code == .queryCancelled { return CancellationError() }
            let unreachable: Set<PSQLError.Code> = [.connectionError, .serverClosedConnection, .clientClosedConnection, .sslUnsupported,
                                                     .failedToAddSSLHandler, .uncleanShutdown, .poolClosed,
                                                     .receivedUnencryptedDataAfterSSLRequest]
            let underlying = e.underlying.map { ": \(String(describing: $0))" } ?? ""
            if unreachable.contains(e.code) {
                return StorageError("database unreachable: \(what): \(endpoint): \(e.code)\(underlying)")
            }
            return StorageError("postgres: \(what): \(e.code)\(underlying)")
        case let e as PostgresDecodingError:
            return StorageError("postgres: \(what): column \(e.columnName) is not a \(e.targetType) (\(e.code))")
        default:
            return StorageError("postgres: \(what): \(error)")
        }
    }

    static func seconds(_ d: Duration) -> String {
        let c = d.components
        let s = Double(c.seconds) + Double(c.attoseconds) / 1e18
        return s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s)
    }

    // MARK: Schema

    /// Every migration, in order. Each area's list lives in the area's file; names are never reused or edited,
    /// a change is a new migration (like the SQLite plugin's).
    static var migrations: [PostgresMigration] {
        callMigrations + jobMigrations + accountMigrations + privacyMigrations + outboxMigrations
    }

    public func migrate() async throws {
        let migrations = Self.migrations
        // Reach the server under the normal deadline first: only the wait for the lock may take longer.
        try await run("connect", "SELECT 1")
        // Longer than one operation: another node's migration may hold the lock for a while.
        try await tx("migrate", timeout: max(operationTimeout, .seconds(120))) { [logger] c in
            // Nodes starting together would race on CREATE TABLE; the first takes this lock, the others wait and
            // then find the migrations applied.
            try await c.run("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger)
            try await c.run("""
                CREATE TABLE IF NOT EXISTS faxgate_migrations (
                    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger)
            var applied = Set<String>()
            for row in try await c.rows("SELECT name FROM faxgate_migrations", logger) {
                applied.insert(try row.value("name"))
            }
            for m in migrations where !applied.contains(m.name) {
                for statement in m.statements {
                    try await c.run(PostgresQuery(unsafeSQL: statement), logger)
                }
                try await c.run("INSERT INTO faxgate_migrations (name) VALUES (\(m.name))", logger)
            }
        }
    }

    /// Advisory lock keys (one number space per database): fixed, documented, never reused.
    static let migrationLockKey: Int64 = 0x6661_7800_0001
}

/// First result wins: the body's or the deadline's.
private final class DeadlineRace<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var result: Result<T, any Error>?

    func install(_ c: CheckedContinuation<T, any Error>) {
        lock.lock()
        if let result { lock.unlock(); c.resume(with: result); return }
        continuation = c
        lock.unlock()
    }

    func finish(_ r: Result<T, any Error>) {
        lock.lock()
        guard result == nil else { lock.unlock(); return }
        result = r
        let c = continuation
        continuation = nil
        lock.unlock()
        c?.resume(with: r)
    }
}

private struct DeadlineExceeded: Error {}

/// The last connection failure the pool logged, and when.
final class ConnectionFailureMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var last: (at: ContinuousClock.Instant, text: String)?

    func note(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        last = (ContinuousClock.now, String(text.prefix(400)))
    }

    func recent(within window: Duration) -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let last, ContinuousClock.now - last.at <= window else { return nil }
        return last.text
    }
}

/// Forwards to the configured handler (at its level) and notes postgres-nio's connection failures, which it logs
/// at info with the error in `psql_error` metadata.
struct ConnectionFailureCapture: LogHandler {
    var inner: any LogHandler
    let memo: ConnectionFailureMemo

    func log(event: LogEvent) {
        if let error = event.metadata?["psql_error"], "\(event.message)".contains("onnection") {
            memo.note("\(error)")
        }
        if event.level >= inner.logLevel { inner.log(event: event) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }
    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }
    /// At most info, so the failures reach `log(event:)` even when the configured level is higher.
    var logLevel: Logger.Level {
        get { min(inner.logLevel, .info) }
        set { inner.logLevel = newValue }
    }
}

extension PostgresConnection {
    /// A query inside a transaction; all rows collected.
    func rows(_ query: PostgresQuery, _ logger: Logger) async throws -> [PostgresRandomAccessRow] {
        var out: [PostgresRandomAccessRow] = []
        for try await row in try await self.query(query, logger: logger) { out.append(row.makeRandomAccess()) }
        return out
    }

    /// A statement inside a transaction; rows it returns are read and dropped.
    func run(_ query: PostgresQuery, _ logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}

extension PostgresRandomAccessRow {
    /// The column's value (names fold to lowercase like unquoted SQL identifiers). Optional types read NULL.
    func value<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        let name = column.lowercased()
        guard contains(name) else { throw StorageError("postgres: the result has no column \(column)") }
        return try self[name].decode(T.self)
    }
}

/// One schema step: statements run in the migration transaction, in order.
struct PostgresMigration: Sendable {
    var name: String
    var statements: [String]
}

/// What the plugin needs to connect, resolved from `storage.postgres` (password read from its file, TLS built).
public struct PostgresConnectionSettings: Sendable {
    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    public var password: String?
    public var tls: TLSMode
    public var maxConnections: Int

    public enum TLSMode: Sendable {
        case disable
        /// Encrypted, certificate not checked (loopback only; validation refuses it elsewhere).
        case requireUnverified
        /// Encrypted, chain and host name verified; `caFile` nil = the system's trust store.
        case verifyFull(caFile: String?)
    }

    public init(host: String, port: Int, database: String, user: String, password: String?, tls: TLSMode, maxConnections: Int = 8) {
        self.host = host; self.port = port; self.database = database; self.user = user; self.password = password
        self.tls = tls; self.maxConnections = maxConnections
    }

    /// From the configuration: reads the password file; refuses what would send the password in clear or
    /// to an unverified server elsewhere than on this machine.
    public init(_ settings: PostgresSettings) throws {
        var password: String?
        if let file = settings.passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw StorageError("cannot read storage.postgres.password_file \(file)")
            }
            password = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        }
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(settings.host)
        let tls: TLSMode
        switch settings.tls {
        case "verify-full": tls = .verifyFull(caFile: settings.caFile)
        case "require":
            guard loopback else {
                throw StorageError("storage.postgres.tls: require (certificate not checked) is refused for \(settings.host): use verify-full with ca_file")
            }
            tls = .requireUnverified
        case "disable":
            guard loopback || settings.host.hasPrefix("/") else {
                throw StorageError("storage.postgres.tls: disable is refused for \(settings.host) (password and data in clear): use verify-full")
            }
            tls = .disable
        default:
            throw StorageError("storage.postgres.tls: '\(settings.tls)' is not one of verify-full, require, disable")
        }
        self.init(host: settings.host, port: settings.port, database: settings.database, user: settings.user, password: password,
                  tls: tls, maxConnections: settings.maxConnections)
    }

    var clientConfiguration: PostgresClient.Configuration {
        let t: PostgresClient.Configuration.TLS
        switch tls {
        case .disable: t = .disable
        case .requireUnverified:
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            t = .require(c)
        case .verifyFull(let caFile):
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .fullVerification
            if let caFile { c.trustRoots = .file(caFile) }
            t = .require(c)
        }
        var config: PostgresClient.Configuration
        if host.hasPrefix("/") {
            config = .init(unixSocketPath: host + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: t)
        }
        config.options.maximumConnections = max(1, maxConnections)
        // Short: a dead host should not eat the operation's whole deadline in one attempt.
        config.options.connectTimeout = .seconds(5)
        return config
    }
}
