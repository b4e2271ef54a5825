import BasicRedaction
import FaxgateCore
import Foundation
import SupportSnapshot
import TestSupport
import XCTest

final class SnapshotTests: XCTestCase {
    let configText = """
        spool_directory: /var/spool/faxgate
        smtp:
          host: mail.example.com
          port: 587
          username: faxgate
          password: "S3cret-Passw0rd-xyz"
        mail: {from: "Faxgate <fax@example.com>"}
        imap_like_section_for_secrets: {token: "tok-9f8e7d6c", password_file: /etc/faxgate/pw}
        extensions:
          - name: Empfang
            numbers: ["100"]
            email: [empfang@praxis-muster.de]
            station_id: "+49 30 9999100"
        # comment with a secret: hunter2hunter2
        """

    func makeLogs(_ dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
            2025-01-30T10:00:00.000Z info faxgate.capi: incoming call from=+49 30 1112223 to=100
            2025-01-30T10:00:01.000Z debug faxgate.reception: [1] raw debug line from 030/1112223 tsi="DR MUELLER"
            2025-01-30T10:00:05.000Z info faxgate.outbox: [1] mail delivered to SMTP server to=empfang@praxis-muster.de
            """.write(toFile: dir + "/faxgate-2025-01-30.log", atomically: true, encoding: .utf8)
        try "2025-01-31T09:00:00.000Z info faxgate.capi: incoming call from=0049 30 1112223 to=100\n"
            .write(toFile: dir + "/faxgate-2025-01-31.log", atomically: true, encoding: .utf8)
        try "2025-02-05T09:00:00.000Z info faxgate.capi: incoming call from=+49 89 4445556 to=100 OUTOFPERIOD\n"
            .write(toFile: dir + "/faxgate-2025-02-05.log", atomically: true, encoding: .utf8)
    }

    func testSnapshot_opensWithPassphraseOnly_andHoldsNoPersonalDataOrSecrets() throws {
        let dir = try TemporaryDirectory("privacy-snapshot")
        try makeLogs(dir.path + "/log")
        let pseudonyms = Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49")
        let request = SnapshotRequest(
            configText: configText, logDirectory: dir.path + "/log", outputDirectory: dir.path + "/snapshots",
            from: DailyLogFiles.day(ofFile: "faxgate-2025-01-30.log"), to: DailyLogFiles.day(ofFile: "faxgate-2025-01-31.log"),
            versions: ["faxgate 0.1.0", "libtiff 4.5"], capiInfo: "driver: rcapi", statistics: ["calls": 3],
            redactor: try BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: PrivacySettings()), redactionRules: BasicRedaction.names)
        var progressCalls = 0
        let result = try SnapshotBuilder.create(request) { _, done, total in
            progressCalls += 1
            XCTAssertLessThanOrEqual(done, total)
        }
        XCTAssertGreaterThan(progressCalls, 0)
        XCTAssertEqual(result.passphrase.count, 35)
        var st = stat()
        XCTAssertEqual(stat(result.path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)

        // Without or with a wrong passphrase: refused by both tools.
        let noPass = try runTool(sevenZip, ["t", "-p", result.path], check: false)
        XCTAssertNotEqual(noPass.status, 0)
        let wrong = try runTool(sevenZip, ["x", "-pWRONG-WRONG-WRONG", "-o\(dir.path)/wrong", result.path], check: false)
        XCTAssertNotEqual(wrong.status, 0)
        let bsdWrong = try runTool("bsdtar", ["-x", "-f", result.path, "-C", dir.path, "--passphrase", "WRONG-WRONG"], check: false)
        XCTAssertNotEqual(bsdWrong.status, 0)

        // With it: both open it.
        let out = dir.path + "/out"
        try runTool(sevenZip, ["x", "-p\(result.passphrase)", "-o\(out)", result.path])
        let out2 = dir.path + "/out2"
        try FileManager.default.createDirectory(atPath: out2, withIntermediateDirectories: true)
        try runTool("bsdtar", ["-x", "-f", result.path, "-C", out2, "--passphrase", result.passphrase])
        let names = Set(try FileManager.default.subpathsOfDirectory(atPath: out))
        for expected in ["manifest.json", "config/faxgate.yaml", "versions.txt", "capi.txt", "statistics.json",
                         "logs/faxgate-2025-01-30.log", "logs/faxgate-2025-01-31.log"] {
            XCTAssertTrue(names.contains(expected), "missing \(expected): \(names)")
        }
        XCTAssertFalse(names.contains("logs/faxgate-2025-02-05.log"), "log outside the period included")

        // Scan everything for personal data and secrets.
        var all = ""
        for name in names {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: out + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                all += try String(contentsOfFile: out + "/" + name, encoding: .utf8) + "\n"
            }
        }
        for secret in ["1112223", "empfang@", "praxis-muster", "MUELLER", "9999100", "S3cret-Passw0rd-xyz", "tok-9f8e7d6c", "hunter2"] {
            XCTAssertFalse(all.contains(secret), "'\(secret)' found in snapshot")
        }
        XCTAssertTrue(all.contains("<removed>"))
        XCTAssertTrue(all.contains("/etc/faxgate/pw"), "a password_file path is not a secret")
        // One caller, three notations, one pseudonym throughout the snapshot.
        let log1 = try String(contentsOfFile: out + "/logs/faxgate-2025-01-30.log", encoding: .utf8)
        let log2 = try String(contentsOfFile: out + "/logs/faxgate-2025-01-31.log", encoding: .utf8)
        let token = pseudonyms.phone("+49 30 1112223")
        XCTAssertEqual(log1.components(separatedBy: token).count - 1, 2, log1)
        XCTAssertTrue(log2.contains(token), log2)

        // list reads the sidecar, which never holds the passphrase.
        let list = SnapshotInfo.list(in: dir.path + "/snapshots")
        XCTAssertEqual(list.map(\.name), [result.info.name])
        let sidecar = try String(contentsOfFile: dir.path + "/snapshots/\(result.info.name).json", encoding: .utf8)
        XCTAssertFalse(sidecar.contains(result.passphrase))
    }

    func testVerifyEncrypted_rejectsAPlainZip() throws {
        let dir = try TemporaryDirectory("privacy-plainzip")
        try "hello".write(toFile: dir.path + "/a.txt", atomically: true, encoding: .utf8)
        try runTool("zip", ["-q", dir.path + "/plain.zip", "a.txt"], currentDirectory: dir.url)
        XCTAssertThrowsError(try EncryptedZipWriter.verifyEncrypted(path: dir.path + "/plain.zip", expectedEntries: 1))
        try runTool("zip", ["-q", "-P", "secret", dir.path + "/zipcrypto.zip", "a.txt"], currentDirectory: dir.url)
        // ZipCrypto is encrypted but weak: not AES, so not accepted either.
        XCTAssertThrowsError(try EncryptedZipWriter.verifyEncrypted(path: dir.path + "/zipcrypto.zip", expectedEntries: 1))
    }

    /// An empty entry (no CAPI info, an empty log day) would be stored unencrypted by libarchive; the snapshot
    /// must still be made, with every entry encrypted, and open with the passphrase.
    func testSnapshot_withEmptyEntries_isStillFullyEncrypted() throws {
        let dir = try TemporaryDirectory("privacy-snapshot-empty")
        try FileManager.default.createDirectory(atPath: dir.path + "/log", withIntermediateDirectories: true)
        try "".write(toFile: dir.path + "/log/faxgate-2025-01-30.log", atomically: true, encoding: .utf8)
        let request = SnapshotRequest(
            configText: configText, logDirectory: dir.path + "/log", outputDirectory: dir.path + "/snapshots",
            from: nil, to: nil, versions: ["faxgate 0.1.0"], capiInfo: "", statistics: [:],
            redactor: try BasicRedaction.snapshotRedactor(pseudonyms: Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49"),
                                                          privacy: PrivacySettings()),
            redactionRules: BasicRedaction.names)
        let result = try SnapshotBuilder.create(request)
        try EncryptedZipWriter.verifyEncrypted(path: result.path, expectedEntries: result.info.entries)
        let out = dir.path + "/out"
        try runTool(sevenZip, ["x", "-p\(result.passphrase)", "-o\(out)", result.path])
        XCTAssertEqual(try String(contentsOfFile: out + "/capi.txt", encoding: .utf8), "(empty)\n")
        XCTAssertEqual(try String(contentsOfFile: out + "/logs/faxgate-2025-01-30.log", encoding: .utf8), "(empty)\n")
    }

    func testPassphrase_hasAtLeast128Bits_andDiffers() {
        let a = Passphrase.generate(), b = Passphrase.generate()
        XCTAssertNotEqual(a, b)
        XCTAssertGreaterThanOrEqual(Passphrase.bits, 128)
        XCTAssertEqual(a.split(separator: "-").count, 6)
        XCTAssertTrue(a.split(separator: "-").allSatisfy { $0.count == 5 })
    }
}

/// 7-Zip: Debian 12's `7zip` package installs `7zz`, p7zip-full installs `7z`; either opens AES ZIPs.
let sevenZip: String = ["7zz", "7z"].first { name in
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
} ?? "7z"
