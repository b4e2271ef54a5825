import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// `storage.postgres` through the real YAML loader, so the reported lines are the ones `config check` prints.
final class ConfigValidatorStorageTests: XCTestCase {
    func testVerifiedTLSWithReadablePasswordFile_isAccepted() throws {
        let dir = try TemporaryDirectory("storage-cfg")
        let password = dir.path + "/pg-password"
        FileManager.default.createFile(atPath: password, contents: Data("secret\n".utf8), attributes: [.posixPermissions: 0o600])
        let config = try ConfigLoader.parse(yaml("""
              postgres:
                host: db.example.com
                port: 5433
                password_file: \(password)
                tls: verify-full
            """))
        XCTAssertEqual(config.storage.driver, "postgres")
        XCTAssertEqual(config.storage.postgres?.port, 5433)
        XCTAssertEqual(config.storage.postgres?.passwordFile, password)
    }

    func testPostgresDriverWithoutSection_isReportedOnTheDriverLine() {
        XCTAssertThrowsError(try ConfigLoader.parse(yaml(""))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.map(\.path), ["storage.driver"], "\(issues)")
            XCTAssertEqual(issues.first?.line, 13)
            XCTAssertTrue(issues.first!.message.contains("storage.postgres"), issues.first!.message)
        }
    }

    func testClearTextOrUnverifiedOffLoopback_badPort_missingPasswordFile_eachOnItsLine() {
        let storage = """
              postgres:
                host: db.example.com
                port: 70000
                password_file: /nonexistent/pg-password
                tls: disable
            """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml(storage))) { error in
            let issues = (error as! ConfigError).issues
            let byPath = Dictionary(issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(issues.count, 3, "\(issues)")
            XCTAssertEqual(byPath["storage.postgres.port"]?.line, 16, "\(issues)")
            XCTAssertEqual(byPath["storage.postgres.password_file"]?.line, 17, "\(issues)")
            XCTAssertTrue(byPath["storage.postgres.password_file"]!.message.contains("does not exist"))
            XCTAssertEqual(byPath["storage.postgres.tls"]?.line, 18, "\(issues)")
            XCTAssertTrue(byPath["storage.postgres.tls"]!.message.contains("in clear"))
        }
        XCTAssertThrowsError(try ConfigLoader.parse(yaml("  postgres:\n    host: 192.0.2.7\n    tls: require\n"))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.map(\.path), ["storage.postgres.tls"], "\(issues)")
            XCTAssertEqual(issues.first?.line, 16)
            XCTAssertTrue(issues.first!.message.contains("verify-full"), issues.first!.message)
        }
        XCTAssertThrowsError(try ConfigLoader.parse(yaml("  postgres:\n    tls: verify-ful\n"))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.map(\.path), ["storage.postgres.tls"], "\(issues)")
            XCTAssertTrue(issues.first!.message.contains("verify-full, require, disable"), issues.first!.message)
        }
    }

    func testClearTextOnLoopbackOrSocket_andUnreadablePasswordFile() throws {
        XCTAssertNoThrow(try ConfigLoader.parse(yaml("  postgres:\n    host: 127.0.0.1\n    tls: disable\n")))
        XCTAssertNoThrow(try ConfigLoader.parse(yaml("  postgres:\n    host: /var/run/postgresql\n    tls: disable\n")))
        XCTAssertNoThrow(try ConfigLoader.parse(yaml("  postgres:\n    host: localhost\n    tls: require\n")))
        let dir = try TemporaryDirectory("storage-cfg")
        let open = dir.path + "/world-readable"
        FileManager.default.createFile(atPath: open, contents: Data("secret\n".utf8), attributes: [.posixPermissions: 0o644])
        XCTAssertThrowsError(try ConfigLoader.parse(yaml("  postgres:\n    password_file: \(open)\n"))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.map(\.path), ["storage.postgres.password_file"], "\(issues)")
            XCTAssertEqual(issues.first?.line, 15)
            XCTAssertTrue(issues.first!.message.contains("world-readable"), issues.first!.message)
        }
    }

    /// The `storage:` block ends the document head so test lines are stable: line 14 is the first extra line.
    private func yaml(_ storage: String) -> String {
        """
        spool_directory: /var/spool/faxgate
        smtp:
          host: mail.example.com
          port: 587
          security: starttls
        mail:
          from: "Fax <fax@example.com>"
        extensions:
          - name: Front
            numbers: ["100-109"]
            email: [front@example.com]
        storage:
          driver: postgres

        """.replacingOccurrences(of: "  driver: postgres\n", with: "  driver: postgres\n" + storage)
    }
}
