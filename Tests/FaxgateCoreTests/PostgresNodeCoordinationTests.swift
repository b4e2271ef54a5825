import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import Synchronization
import TestSupport
import XCTest

/// Two coordination objects on one real PostgreSQL database are two nodes: singletons, failover, fencing, wake-ups.
final class PostgresNodeCoordinationTests: XCTestCase {
    /// Short, so a test waits a few seconds at most; still long enough for a busy 2-core machine to answer SELECT 1.
    let heartbeat: Duration = .milliseconds(500)

    func node(_ id: String, db: String, server: PostgresServer, overTLS: Bool = false, dir: String = "/tmp") throws -> PostgresNodeCoordination {
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = db
        if overTLS {
            // The password role over verified TLS, like a real installation.
            settings.user = server.passwordRole
            settings.passwordFile = try server.writePasswordFile(in: dir)
            settings.tls = "verify-full"; settings.caFile = server.caFile
        } else {
            settings.user = "postgres"; settings.tls = "disable"
        }
        var logger = Logger(label: "node-\(id)")
        logger.logLevel = .warning
        return PostgresNodeCoordination(connection: try PostgresConnectionSettings(settings), node: id, heartbeat: heartbeat, logger: logger)
    }

    /// Polls `condition` until it holds; fails the test (not a timing assertion: a generous bound for "never").
    func waitUntil(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) async throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("never happened: \(what)")
        throw CancellationError()
    }

    func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "pgnode-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func testOneLeaderPerSingletonAndFailoverWhenTheLeadersSessionIsKilled() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try node("A", db: db, server: server, overTLS: true, dir: dir)
        let b = try node("B", db: db, server: server)
        let singletons = [NodeSingleton.retention, NodeSingleton.adminDigest, NodeSingleton.leaseExpiry]
        // A asks first, so it takes every lock; B only contends afterwards.
        for s in singletons { _ = a.isLeader(of: s) }
        let runA = Task { try await a.run() }
        try await waitUntil("A unfenced and leading") { !a.isFenced && singletons.allSatisfy { a.isLeader(of: $0) } }
        for s in singletons { _ = b.isLeader(of: s) }
        let runB = Task { try await b.run() }
        defer { runA.cancel(); runB.cancel() }
        try await waitUntil("B unfenced") { !b.isFenced }
        // Several of B's heartbeats: it must not get what A holds.
        try await Task.sleep(for: heartbeat * 4)
        for s in singletons {
            XCTAssertTrue(a.isLeader(of: s), s)
            XCTAssertFalse(b.isLeader(of: s), "two leaders of \(s)")
        }
        let locks = try server.psql("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '\(db)'")
        XCTAssertEqual(locks.trimmingCharacters(in: .whitespacesAndNewlines), "\(singletons.count)", "one advisory lock per singleton")

        // A's session dies and A cannot come back (its role may not connect to this database any more).
        try server.psql("REVOKE CONNECT ON DATABASE \(db) FROM PUBLIC; REVOKE ALL ON DATABASE \(db) FROM \(server.passwordRole)")
        let killed = try server.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'faxgate-node A'")
        XCTAssertEqual(killed.trimmingCharacters(in: .whitespacesAndNewlines), "1", "A's coordination session is visible by its application_name")
        try await waitUntil("A fenced") { a.isFenced }
        try await waitUntil("B took over every singleton") { singletons.allSatisfy { b.isLeader(of: $0) } }
        XCTAssertTrue(a.isFenced)
        for s in singletons { XCTAssertFalse(a.isLeader(of: s), "a fenced node leads nothing") }

        // A comes back: unfenced, but B keeps the singletons.
        try server.psql("GRANT CONNECT ON DATABASE \(db) TO \(server.passwordRole)")
        try await waitUntil("A unfenced again") { !a.isFenced }
        try await Task.sleep(for: heartbeat * 3)
        for s in singletons {
            XCTAssertTrue(b.isLeader(of: s), s)
            XCTAssertFalse(a.isLeader(of: s), "two leaders of \(s) after A came back")
        }
    }

    func testRunAsLeaderRunsTheBodyOnlyOnTheLeaderAndMovesItOnFailover() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let a = try node("A", db: db, server: server)
        let b = try node("B", db: db, server: server)
        let runningOn = Mutex<[String]>([])
        _ = a.isLeader(of: "job")
        let runA = Task { try await a.run() }
        try await waitUntil("A leads") { a.isLeader(of: "job") }
        let runB = Task { try await b.run() }
        let loggerA = Logger(label: "A"), loggerB = Logger(label: "B")
        // Each body records its node while it runs; cancellation (lost leadership) removes it.
        func body(_ id: String) -> @Sendable () async throws -> Void {
            { @Sendable in
                runningOn.withLock { $0.append(id) }
                defer { runningOn.withLock { $0.removeAll { $0 == id } } }
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let bodyA = body("A"), bodyB = body("B")
        let singleA = Task { await a.runAsLeader("job", logger: loggerA, bodyA) }
        let singleB = Task { await b.runAsLeader("job", logger: loggerB, bodyB) }
        defer { runA.cancel(); runB.cancel(); singleA.cancel(); singleB.cancel() }
        try await waitUntil("the body runs on A") { runningOn.withLock { $0 } == ["A"] }
        try await waitUntil("B unfenced") { !b.isFenced }
        try await Task.sleep(for: heartbeat * 3)
        XCTAssertEqual(runningOn.withLock { $0 }, ["A"], "the singleton runs on the leader only")

        // A stops (a node shut down): its session ends, B runs the singleton.
        singleA.cancel()
        runA.cancel()
        _ = try? await runA.value
        try await waitUntil("the body moved to B") { runningOn.withLock { $0 } == ["B"] }
    }

    func testNotifyFromAnotherSessionWakesTheStream() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let a = try node("A", db: db, server: server)
        let run = Task { try await a.run() }
        defer { run.cancel() }
        try await waitUntil("A unfenced") { !a.isFenced }
        let wakeups = a.jobWakeups()  // subscribed after unfencing: only a notification wakes it now
        let woken = Mutex(false)
        let reader = Task {
            for await _ in wakeups { woken.withLock { $0 = true }; return }
        }
        defer { reader.cancel() }
        // LISTEN is registered concurrently with the first heartbeat: notify until heard, a bounded number of times.
        for _ in 0..<60 where !woken.withLock({ $0 }) {
            try server.psql("SELECT pg_notify('faxgate_jobs', '1')", database: db)
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertTrue(woken.withLock { $0 }, "a NOTIFY on faxgate_jobs from another session woke the stream")
        XCTAssertFalse(a.isFenced)
    }

    func testDatabaseRestartFencesThenUnfencesAndLeadsAgain() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let a = try node("A", db: db, server: server)
        _ = a.isLeader(of: NodeSingleton.retention)
        // Every state the node passed through, so a fence that came and went during the restart is still seen.
        let history = Mutex<[Bool]>([])
        let changes = a.stateChanges()
        let watcher = Task { for await _ in changes { let f = a.isFenced; history.withLock { $0.append(f) } } }
        let run = Task { try await a.run() }
        defer { run.cancel(); watcher.cancel() }
        try await waitUntil("A unfenced and leading") { !a.isFenced && a.isLeader(of: NodeSingleton.retention) }
        XCTAssertEqual(history.withLock { $0.first }, true, "a node starts fenced until it has reached the database")
        let before = history.withLock { $0.count }

        try server.restart(downSeconds: 1)
        try await waitUntil("A fenced at some point during the restart") { history.withLock { $0.dropFirst(before).contains(true) } }
        try await waitUntil("A unfenced and leading again") { !a.isFenced && a.isLeader(of: NodeSingleton.retention) }
    }

    func testUnreachableDatabaseStaysFenced() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = try FreePort.loopbackTCP(); settings.database = db
        settings.user = "postgres"; settings.tls = "disable"
        let a = PostgresNodeCoordination(connection: try PostgresConnectionSettings(settings), node: "A", heartbeat: heartbeat,
                                         logger: Logger(label: "A"))
        let run = Task { try await a.run() }
        defer { run.cancel() }
        // Several connection attempts (backoff starts short): fail closed, never "no problem".
        try await Task.sleep(for: .seconds(2))
        XCTAssertTrue(a.isFenced)
        XCTAssertFalse(a.isLeader(of: NodeSingleton.retention))
    }
}
