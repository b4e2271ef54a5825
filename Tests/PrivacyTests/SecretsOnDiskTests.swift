import BasicRedaction
import FaxgateCore
import Foundation
import Logging
import MailOut
import SQLiteStorage
import SupportSnapshot
import TestSupport
import XCTest

/// Issue 8 point 12: what the gateway writes is the daemon's alone — files 0600, directories 0700 — whatever the
/// umask it was started with; and `config check` finds secrets others could read.
final class SecretsOnDiskTests: XCTestCase {
    func testEveryFileTheGatewayCreates_is0600_andEveryDirectory0700_evenWithUmask000() async throws {
        let dir = try TemporaryDirectory("umask")
        let spool = dir.path + "/spool"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let old = umask(0)
        defer { umask(old) }

        // The real parts, as serve assembles them.
        let storage = try SQLiteStorage(path: spool + "/faxgate.sqlite")
        try await storage.migrate()
        _ = try await storage.insertCall(CallRecord(state: .receiving, callingNumber: "+49301112223", calledNumber: "100", extensionName: "E"),
                                         event: "answering")
        let logger = Logger(label: "t")
        let outbox = try Outbox(directory: spool + "/outbox", sender: NoSender(),
                                settings: .init(retryInitial: .seconds(60), retryMax: .seconds(60), giveUpAfter: .seconds(3600)), logger: logger)
        _ = try await outbox.enqueue(message: Array("Subject: x\r\n\r\nfax\r\n".utf8), envelopeFrom: "a@example.test",
                                     recipients: ["b@example.test"], callID: 1, id: "call-1")
        let ext = Extension(name: "E", numbers: [NumberPattern("100")!], recipients: ["e@example.test"], formats: [.pdf], language: .de, stationID: "+49 30 9")
        _ = try ReceptionPipeline(
            settings: .init(spoolDirectory: spool, from: MailAddress("fax@example.test", displayName: "Fax"), envelopeFrom: "fax@example.test",
                            hostname: "gw.example.test"),
            directory: ExtensionDirectory(extensions: [ext], catchAllName: nil), storage: storage, outbox: outbox, logger: logger)
        let received = try ReceptionSpoolFile(path: spool + "/incoming/1.sff")
        received.append(Array("Sfff".utf8))
        try received.finish()
        DailyLogFiles(directory: spool + "/log").write("a line\n")
        _ = try Pseudonymizer.installationKey(spoolDirectory: spool, create: true)
        try DurableFile.write(Array("x".utf8), to: spool + "/intake-like.eml")
        let snapshot = try SnapshotBuilder.create(SnapshotRequest(
            configText: "spool_directory: /x\n", logDirectory: spool + "/log", outputDirectory: spool + "/snapshots", from: nil, to: nil,
            versions: ["faxgate test"], capiInfo: "driver: rcapi", statistics: [:], redactor: Redactor([]), redactionRules: []))
        XCTAssertTrue(FileManager.default.fileExists(atPath: snapshot.path))

        var checked = 0
        let walker = FileManager.default.enumerator(atPath: spool)!
        while let name = walker.nextObject() as? String {
            let path = spool + "/" + name
            var st = stat()
            XCTAssertEqual(lstat(path, &st), 0)
            let mode = st.st_mode & 0o7777
            if (st.st_mode & S_IFMT) == S_IFDIR {
                XCTAssertEqual(mode, 0o700, "directory \(name) is \(String(mode, radix: 8))")
            } else {
                XCTAssertEqual(mode, 0o600, "file \(name) is \(String(mode, radix: 8))")
            }
            checked += 1
        }
        for expected in ["faxgate.sqlite", "faxgate.sqlite-wal", "faxgate.sqlite-shm", "outbox/call-1.eml", "outbox/call-1.json", "incoming/1.sff",
                         "privacy/pseudonym.key"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: spool + "/" + expected), "\(expected) was not made")
        }
        XCTAssertGreaterThan(checked, 12)
    }

    func testConfigCheck_errsOnReadableSecrets_missingPasswordFiles_andDisabledRedaction() throws {
        let dir = try TemporaryDirectory("config-secrets")
        let base = """
            spool_directory: /var/spool/faxgate
            smtp: {host: mail.example.com, port: 587, username: fax, password: "S3cret"}
            mail: {from: "Fax <fax@example.com>"}
            extensions:
              - {name: Empfang, numbers: ["100"], email: [empfang@example.com]}

            """
        let path = dir.path + "/faxgate.yaml"
        try base.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.parse(base)
        chmod(path, 0o644)
        XCTAssertEqual(ConfigValidator.secretFileProblems(configPath: path, config: config).count, 1)
        XCTAssertTrue(ConfigValidator.secretFileProblems(configPath: path, config: config)[0].contains("smtp.password"))
        chmod(path, 0o640)
        XCTAssertEqual(ConfigValidator.secretFileProblems(configPath: path, config: config), [])

        // A password file: missing, world-readable, fine.
        let pw = dir.path + "/smtp-password"
        let withFile = try ConfigLoader.parse(base.replacingOccurrences(of: "password: \"S3cret\"", with: "password_file: \(pw)"))
        chmod(path, 0o644)  // no inline secret: a world-readable config is fine
        XCTAssertTrue(ConfigValidator.secretFileProblems(configPath: path, config: withFile).first?.contains("does not exist") == true)
        try "S3cret\n".write(toFile: pw, atomically: true, encoding: .utf8)
        chmod(pw, 0o644)
        XCTAssertTrue(ConfigValidator.secretFileProblems(configPath: path, config: withFile).first?.contains("world-readable") == true)
        chmod(pw, 0o640)
        XCTAssertEqual(ConfigValidator.secretFileProblems(configPath: path, config: withFile), [])

        // Redaction switched off, or only from warnings up: refused.
        XCTAssertThrowsError(try ConfigLoader.parse(base + "log: {redaction: [phone]}\n")) { XCTAssertTrue("\($0)".contains("must include email"), "\($0)") }
        XCTAssertThrowsError(try ConfigLoader.parse(base + "log: {redact_from: warning}\n"))
        // Archive and passphrase to one mailbox: refused.
        XCTAssertThrowsError(try ConfigLoader.parse(base + "snapshot: {support_address: help@vendor.example, passphrase_address: \"Help <HELP@vendor.example>\"}\n"))
        XCTAssertNoThrow(try ConfigLoader.parse(base + "snapshot: {support_address: help@vendor.example, passphrase_address: boss@vendor.example}\n"))
    }
}

/// Issue 8 point 9: caller numbers and station ids from the line are cleaned where they enter the core, so no
/// control or invisible character reaches a log line, the journal or a mail header.
final class UntrustedLineTextTests: XCTestCase {
    func testStationIDAndCallerNumber_areCleanedAtTheSeam() {
        let info = FaxSessionInfo(remoteStationID: "  DR\u{0}MUELLER\r\nBcc: x@evil.test\u{202E}\u{200B} 030\t123  ")
        XCTAssertEqual(info.remoteStationID, "DRMUELLER Bcc: x@evil.test 030 123")
        let caller = PartyNumber(digits: "030\u{1}1234\u{200B}567\n", type: .national)
        XCTAssertEqual(caller.digits, "0301234567")
        XCTAssertEqual(UntrustedText.logSafe("a\nb\u{7}c\u{2066}d"), "a b\u{FFFD}cd")
    }
}
