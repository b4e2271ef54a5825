import FaxgateCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO

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
    private let runTask: Task<Void, Never>

    public init(connection: PostgresConnectionSettings, node: String, spoolDirectory: String, logger: Logger) {
        self.client = PostgresClient(configuration: connection.clientConfiguration, backgroundLogger: logger)
        self.logger = logger
        self.node = node
        self.spoolDirectory = spoolDirectory
        let client = self.client
        self.runTask = Task { await client.run() }
    }

    deinit { runTask.cancel() }

    /// Ends the connection pool. Queries after this fail.
    public func close() { runTask.cancel() }

    /// The server's version string (`faxgate version`, `config check`).
    public func serverVersion() async throws -> String {
        for try await v in try await client.query("SELECT version()", logger: logger).decode(String.self) { return v }
        return "?"
    }

    // MARK: Schema

    /// Every migration, in order. Each area's list lives in the area's file; names are never reused or edited,
    /// a change is a new migration (like the SQLite plugin's).
    static var migrations: [PostgresMigration] {
        callMigrations + jobMigrations + accountMigrations + privacyMigrations
    }

    public func migrate() async throws {
        try await client.withTransaction(logger: logger) { c in
            // Nodes starting together would race on CREATE TABLE; the first takes this lock, the others wait and
            // then find the migrations applied.
            try await c.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: logger)
            try await c.query("""
                CREATE TABLE IF NOT EXISTS faxgate_migrations (
                    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var applied = Set<String>()
            for try await name in try await c.query("SELECT name FROM faxgate_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for m in Self.migrations where !applied.contains(m.name) {
                for statement in m.statements {
                    try await c.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await c.query("INSERT INTO faxgate_migrations (name) VALUES (\(m.name))", logger: logger)
            }
        }
    }

    /// Advisory lock keys (one number space per database): fixed, documented, never reused.
    static let migrationLockKey: Int64 = 0x6661_7800_0001
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
        config.options.connectTimeout = .seconds(10)
        return config
    }
}
