import FaxgateCore
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

extension PostgresStorage: NodeCoordinationProviding {
    public func nodeCoordination(node: String, settings: NodeSettings, logger: Logger) -> any NodeCoordination {
        PostgresNodeCoordination(connection: connectionSettings, node: node,
                                 heartbeat: .seconds(max(1, settings.heartbeatSeconds)), logger: logger)
    }
}

/// Node coordination over one dedicated PostgreSQL session (not the pool: session advisory locks and LISTEN belong
/// to one session and die with it).
///
/// - Singletons: `pg_try_advisory_lock(key)` per name this node asked about; the lock is released by the server
///   when the session ends, so another node takes it on its next heartbeat.
/// - Fencing: a failed heartbeat (`SELECT 1` within one heartbeat period) or a closed connection fences the node at
///   once and drops every leadership (the connection is closed, so the server releases the locks too). It
///   reconnects with backoff, then takes the locks it can, and unfences.
/// - Wake-ups: `LISTEN faxgate_jobs` (the jobs code sends `pg_notify('faxgate_jobs', …)`), plus one after every
///   reconnect because notifications sent meanwhile are lost.
///
/// The session's `application_name` is `faxgate-node <id>`, so an operator sees (and may end) it in pg_stat_activity.
public final class PostgresNodeCoordination: NodeCoordination {
    public let node: String
    let settings: PostgresConnectionSettings
    let heartbeat: Duration
    let logger: Logger

    private struct State {
        var fenced = true
        var wanted: Set<String> = []
        var held: Set<String> = []
    }
    private let state = Mutex(State())
    private let changes = SignalBroadcaster()
    private let wakeups = SignalBroadcaster()
    /// Wakes the heartbeat loop early: new interest in a singleton, or the connection closed.
    private let kick = Wakeup()

    static let channel = "faxgate_jobs"

    public init(connection: PostgresConnectionSettings, node: String, heartbeat: Duration, logger: Logger) {
        self.settings = connection; self.node = node; self.heartbeat = heartbeat; self.logger = logger
    }

    public func isLeader(of name: String) -> Bool {
        let (leads, isNew) = state.withLock { s in (s.held.contains(name) && !s.fenced, s.wanted.insert(name).inserted) }
        if isNew { kick.signal() }
        return leads
    }

    public var isFenced: Bool { state.withLock { $0.fenced } }
    public func stateChanges() -> AsyncStream<Void> { changes.subscribe(initial: true) }
    public func jobWakeups() -> AsyncStream<Void> { wakeups.subscribe(initial: false) }

    /// The advisory lock key of a singleton: a stable 64-bit FNV-1a hash of its name (the same on every node and
    /// release; `Hashable` is seeded per process and would not be).
    static func lockKey(_ name: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in ("faxgate-singleton:" + name).utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return Int64(bitPattern: h)
    }

    public func run() async throws {
        var backoff: Duration = .milliseconds(200)
        let maxBackoff = max(heartbeat, .seconds(5))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var connection: PostgresConnection?
            do {
                let c = try await connect()
                connection = c
                backoff = .milliseconds(200)
                // SIGTERM does not cancel a service, it only flags graceful shutdown: the session (LISTEN, heartbeat)
                // must be cancelled explicitly, or the node never stops.
                try await cancelWhenGracefulShutdown { [self] in try await session(on: c) }
            } catch {
                if !Task.isCancelled && !Task.isShuttingDownGracefully {
                    logger.warning("node coordination: database session lost or not reached: \(String(reflecting: error))", metadata: ["node": "\(node)"])
                }
            }
            fence(stopping: Task.isCancelled || Task.isShuttingDownGracefully)
            if let connection { try? await connection.close() }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            let pause = backoff
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) } } catch { break }
            backoff = min(backoff * 2, maxBackoff)
        }
        fence(stopping: true)
        changes.finish()
        wakeups.finish()
    }

    private func fence(stopping: Bool = false) {
        let changed = state.withLock { s -> Bool in
            defer { s.fenced = true; s.held = [] }
            return !s.fenced || !s.held.isEmpty
        }
        if changed && !stopping {
            logger.error("node fenced: no new work until the database is back", metadata: ["node": "\(node)"])
        }
        if changed { changes.signal() }
    }

    private func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration: try settings.dedicatedConfiguration(applicationName: "faxgate-node \(node)"),
                                             id: 1, logger: logger)
    }

    /// Listens and heartbeats until the session fails; throws then.
    private func session(on connection: PostgresConnection) async throws {
        connection.closeFuture.whenComplete { [kick] _ in kick.signal() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [logger, wakeups] in
                try await connection.listen(on: Self.channel) { notifications in
                    for try await _ in notifications { wakeups.signal() }
                }
                if !Task.isCancelled { logger.debug("LISTEN ended") }
                throw StorageError("the coordination session stopped listening")
            }
            group.addTask { [self] in
                defer { connection.close().whenComplete { _ in } }  // ends the listener too, and releases the locks on the server
                while !Task.isCancelled {
                    try await beat(connection)
                    await kick.wait(timeout: heartbeat)
                }
                throw CancellationError()
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// One heartbeat: the connection answers within a heartbeat period, then try the singletons not held.
    private func beat(_ connection: PostgresConnection) async throws {
        guard !connection.isClosed else { throw StorageError("the coordination connection closed") }
        let timer = Task { [heartbeat] in
            try await Task.sleep(for: heartbeat)
            connection.close().whenComplete { _ in }  // a hung server: the query fails instead of blocking the heartbeat
        }
        defer { timer.cancel() }
        let wanted = state.withLock { $0.wanted.subtracting($0.held) }
        var gained: Set<String> = []
        for name in wanted.sorted() {
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey(name)))", logger: logger)
            for try await got in rows.decode(Bool.self) where got { gained.insert(name) }
        }
        for try await _ in try await connection.query("SELECT 1", logger: logger) {}
        timer.cancel()
        let (unfenced, changed) = state.withLock { s -> (Bool, Bool) in
            let was = s.fenced
            s.fenced = false
            s.held.formUnion(gained)
            return (was, was || !gained.isEmpty)
        }
        if unfenced { logger.notice("node in contact with its database: taking work", metadata: ["node": "\(node)"]) }
        if changed {
            if !gained.isEmpty {
                logger.notice("node leads \(gained.sorted().joined(separator: ", "))", metadata: ["node": "\(node)"])
            }
            changes.signal()
            wakeups.signal()  // after (re)connecting: jobs made claimable meanwhile sent notifications nobody heard
        }
    }
}

extension PostgresConnectionSettings {
    /// A single connection's configuration with the same server, credentials and TLS as the pool.
    func dedicatedConfiguration(applicationName: String) throws -> PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if host.hasPrefix("/") {
            config = .init(unixSocketPath: host + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let t: PostgresConnection.Configuration.TLS
            switch tls {
            case .disable: t = .disable
            case .requireUnverified:
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = .none
                t = .require(try NIOSSLContext(configuration: c))
            case .verifyFull(let caFile):
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = .fullVerification
                if let caFile { c.trustRoots = .file(caFile) }
                t = .require(try NIOSSLContext(configuration: c))
            }
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: t)
        }
        config.options.connectTimeout = .seconds(10)
        // Printable ASCII only (the server turns anything else into '?'), within NAMEDATALEN.
        let name = String(String.UnicodeScalarView(applicationName.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }).prefix(60))
        config.options.additionalStartupParameters = [("application_name", name)]
        return config
    }
}
