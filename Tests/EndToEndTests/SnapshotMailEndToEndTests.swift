import Foundation
import TestSupport
import XCTest

/// Issue 8 point 12: `faxgate snapshot create --mail` never writes the passphrase to disk — no outbox copy when
/// the SMTP server is away — and never sends it to the archive's mailbox.
final class SnapshotMailEndToEndTests: XCTestCase {
    func writeConfig(_ dir: TemporaryDirectory, smtp: String, support: String, passphrase: String) throws -> String {
        let spool = dir.path + "/spool"
        try FileManager.default.createDirectory(atPath: spool + "/log", withIntermediateDirectories: true)
        try "2026-11-30T10:00:00.000Z info faxgate.capi: incoming call from=[phone:abcdefgh] to=100\n"
            .write(toFile: spool + "/log/faxgate-2026-11-30.log", atomically: true, encoding: .utf8)
        let path = dir.path + "/faxgate.yaml"
        try """
            spool_directory: \(spool)
            hostname: faxgate.e2e.test
            \(smtp)
            mail: {from: "Faxgate <fax@example.test>"}
            extensions:
              - {name: Empfang, numbers: ["100"], email: [empfang@example.test]}
            snapshot: {support_address: "\(support)", passphrase_address: "\(passphrase)"}

            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Every byte under the directory, for the passphrase scan.
    func allBytes(under root: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for name in FileManager.default.subpaths(atPath: root) ?? [] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                bytes += (FileManager.default.contents(atPath: root + "/" + name).map { [UInt8]($0) } ?? [])
            }
        }
        return bytes
    }

    func passphrase(in output: String) throws -> String {
        let line = try XCTUnwrap(output.split(separator: "\n").first { $0.hasPrefix("passphrase (shown once") }, output)
        return String(line.split(separator: " ").last!)
    }

    func testSMTPUnreachable_saysSo_andNothingIsQueued() throws {
        let dir = try TemporaryDirectory("snapshot-mail-down")
        // A port nobody listens on: bind one, note it, close it.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in(); addr.sin_family = sa_family_t(AF_INET); addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        close(probe)
        let config = try writeConfig(dir, smtp: "smtp: {host: 127.0.0.1, port: \(port), security: none, timeout_seconds: 5}",
                                     support: "support@vendor.example", passphrase: "lead@vendor.example")
        let run = try runTool(GatewayHarness.faxgateBinary, ["snapshot", "create", "--mail", "--quiet", "-c", config], check: false)
        XCTAssertEqual(run.status, 75, run.stderrText)
        XCTAssertTrue(run.stderrText.contains("archive not mailed"), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("nothing was queued"), run.stderrText)
        let secret = try passphrase(in: run.stdoutText)
        XCTAssertEqual(secret.count, 35)
        let disk = try allBytes(under: dir.path)
        XCTAssertFalse(String(decoding: disk, as: UTF8.self).contains(secret), "the passphrase is on disk")
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/spool/outbox")) ?? [], [], "something was queued")
    }

    func testSameMailboxForArchiveAndPassphrase_isRefused() throws {
        let dir = try TemporaryDirectory("snapshot-mail-same")
        let config = try writeConfig(dir, smtp: "smtp: {host: 127.0.0.1, port: 25, security: none}",
                                     support: "support@vendor.example", passphrase: "Support <SUPPORT@vendor.example>")
        let run = try runTool(GatewayHarness.faxgateBinary, ["snapshot", "create", "--mail", "--quiet", "-c", config], check: false)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderrText.contains("passphrase_address"), run.stderrText)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/spool/snapshots"), "no snapshot made for a refused run")
    }

    func testArchiveAndPassphrase_reachTwoMailboxes_throughRealPostfix_andNeverTheDisk() throws {
        let mail = try MailServers.start()
        defer { mail.stop() }
        let dir = try TemporaryDirectory("snapshot-mail-real")
        try (mail.password + "\n").write(toFile: dir.path + "/smtp-password", atomically: true, encoding: .utf8)
        chmod(dir.path + "/smtp-password", 0o600)
        let smtp = """
            smtp: {host: localhost, port: \(mail.smtpStartTLSPort), security: starttls, username: \(mail.user), password_file: \(dir.path)/smtp-password, ca_file: \(mail.caFile), timeout_seconds: 10}
            """
        let config = try writeConfig(dir, smtp: smtp, support: mail.users[0], passphrase: mail.users[1])
        let run = try runTool(GatewayHarness.faxgateBinary, ["snapshot", "create", "--mail", "--quiet", "-c", config], check: false)
        XCTAssertEqual(run.status, 0, run.stderrText + mail.logTail())
        let secret = try passphrase(in: run.stdoutText)
        let archiveMail = try XCTUnwrap(try mail.fetch(user: mail.users[0], expect: 1, timeoutSeconds: 30).first)
        let secretMail = try XCTUnwrap(try mail.fetch(user: mail.users[1], expect: 1, timeoutSeconds: 30).first)
        XCTAssertTrue(String(decoding: archiveMail, as: UTF8.self).contains("application/zip"))
        XCTAssertFalse(String(decoding: archiveMail, as: UTF8.self).contains(secret), "passphrase in the archive's mail")
        XCTAssertTrue(String(decoding: secretMail, as: UTF8.self).contains(secret))
        XCTAssertFalse(String(decoding: secretMail, as: UTF8.self).contains("application/zip"))
        XCTAssertFalse(String(decoding: try allBytes(under: dir.path + "/spool"), as: UTF8.self).contains(secret), "the passphrase is on disk")
    }
}
