import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import TestSupport
import XCTest

/// The plugin reaches a real PostgreSQL 15 the way the configuration says, and refuses what would be unsafe.
final class PostgresConnectionTests: XCTestCase {
    func testMigratesOverVerifiedTLSWithPasswordFile() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let dir = NSTemporaryDirectory() + "pgconn-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = db; settings.user = server.passwordRole
        settings.passwordFile = try server.writePasswordFile(in: dir)
        settings.tls = "verify-full"; settings.caFile = server.caFile
        let storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: "n1", spoolDirectory: dir, logger: Logger(label: "t"))
        defer { storage.close() }
        try await storage.migrate()
        try await storage.migrate()  // idempotent
        let version = try await storage.serverVersion()
        XCTAssertTrue(version.hasPrefix("PostgreSQL 15"), version)
        let ssl = try server.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = '\(server.passwordRole)' AND s.ssl")
        XCTAssertGreaterThan(Int(ssl.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0, "the pool's connection uses TLS")
    }

    func testUnverifiableCertificateIsRefused() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        var settings = PostgresSettings()
        settings.port = server.port; settings.database = db; settings.user = "postgres"
        settings.tls = "verify-full"  // the system trust store does not know the test CA
        // A short deadline: the pool would keep retrying the handshake for about 70 s.
        let storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: "n1", spoolDirectory: "/tmp", logger: Logger(label: "t"),
                                      operationTimeout: .seconds(3))
        defer { storage.close() }
        do {
            try await storage.migrate()
            XCTFail("connected to a server whose certificate nobody we trust signed")
        } catch {
            // Refused as unreachable, and the reason (the handshake) is in the message.
            XCTAssertTrue("\(error)".hasPrefix("database unreachable: "), "\(error)")
            XCTAssertTrue("\(error)".lowercased().contains("certificate"), "\(error)")
        }
    }

    func testClearTextAndUnverifiedAreRefusedOffLoopback() throws {
        var settings = PostgresSettings()
        settings.host = "db.example.com"
        settings.tls = "disable"
        XCTAssertThrowsError(try PostgresConnectionSettings(settings))
        settings.tls = "require"
        XCTAssertThrowsError(try PostgresConnectionSettings(settings))
        settings.tls = "verify-ful"
        XCTAssertThrowsError(try PostgresConnectionSettings(settings))
        settings.tls = "verify-full"
        XCTAssertNoThrow(try PostgresConnectionSettings(settings))
    }
}
