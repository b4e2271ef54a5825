import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// `faxgate user` and `faxgate audit`, run as the real binary against a real SQLite file that another writer (this
/// test, standing in for `serve`) holds open. Passwords are checked with glibc's libxcrypt bcrypt through Python's
/// `crypt`, an implementation independent of the one that hashed them.
final class UserCommandsEndToEndTests: XCTestCase {
    var dir: TemporaryDirectory!
    var configPath: String { dir.path + "/faxgate.yaml" }
    var dbPath: String { dir.path + "/spool/faxgate.sqlite" }

    override func setUpWithError() throws {
        dir = try TemporaryDirectory("faxgate-user-cli")
        try FileManager.default.createDirectory(atPath: dir.path + "/spool", withIntermediateDirectories: true)
        try """
        spool_directory: \(dir.path)/spool
        smtp:
          host: mail.example.com
          port: 587
          security: starttls
        mail:
          from: "Fax <fax@example.com>"
        capi:
          driver: rcapi
          host: 127.0.0.1
        extensions:
          - name: Empfang
            numbers: ["100"]
            email: [empfang@example.com]
          - name: Labor
            numbers: ["200"]
            email: [labor@example.com]

        """.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    @discardableResult
    func faxgate(_ args: [String], stdin: String? = nil) throws -> ToolResult {
        try runTool(GatewayHarness.faxgateBinary, args + ["-c", configPath], stdin: stdin.map { Data($0.utf8) }, check: false)
    }

    /// Whether `password` matches the bcrypt `hash`, by libxcrypt.
    func bcryptMatches(_ password: String, _ hash: String) throws -> Bool {
        let script = "import sys, crypt\npw, h = sys.stdin.read().split('\\n')[:2]\nprint(crypt.crypt(pw, h) == h)"
        let out = try runTool("/usr/bin/python3", ["-W", "ignore", "-c", script], stdin: Data("\(password)\n\(hash)\n".utf8))
        return out.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "True"
    }

    func oneTimePassword(in out: ToolResult) throws -> String {
        let line = try XCTUnwrap(out.stdoutText.split(separator: "\n").first { $0.hasPrefix("one-time password: ") }, out.stdoutText)
        return String(line.dropFirst("one-time password: ".count))
    }

    func testUserCommands_addListDisableResetRemove_audited() async throws {
        // The spool belongs to the service user; root running the CLI must leave the database to that user.
        let nobody = getpwnam("nobody")!.pointee
        XCTAssertEqual(chown(dir.path + "/spool", nobody.pw_uid, nobody.pw_gid), 0)

        let empty = try faxgate(["user", "list"])
        XCTAssertEqual(empty.status, 0, empty.stderrText)
        XCTAssertTrue(empty.stdoutText.contains("no users yet"), "no default account exists: \(empty.stdoutText)")

        // add --admin: a one-time password, printed once, that verifies against the stored bcrypt hash.
        let added = try faxgate(["user", "add", "anna", "--admin"])
        XCTAssertEqual(added.status, 0, added.stderrText)
        let otp = try oneTimePassword(in: added)
        XCTAssertGreaterThanOrEqual(otp.count, 16)
        XCTAssertEqual(added.stdoutText.components(separatedBy: otp).count, 2, "the password is printed exactly once")
        for file in [dbPath, dbPath + "-wal", dbPath + "-shm"] where FileManager.default.fileExists(atPath: file) {
            var s = stat()
            XCTAssertEqual(stat(file, &s), 0)
            XCTAssertEqual(s.st_uid, nobody.pw_uid, "\(file) belongs to the spool's owner, not root")
            XCTAssertEqual(s.st_mode & 0o777, 0o600, file)
        }
        let storage = try SQLiteStorage(path: dbPath)  // held open like serve's
        let anna = try await XCTUnwrapAsync(try await storage.user(name: "anna"))
        XCTAssertEqual(anna.role, .admin)
        XCTAssertTrue(anna.mustChangePassword, "a one-time password must be changed at the first login")
        XCTAssertTrue(anna.passwordHash.hasPrefix("$2b$12$"), "bcrypt, cost 12: \(anna.passwordHash.prefix(7))")
        XCTAssertTrue(try bcryptMatches(otp, anna.passwordHash))
        XCTAssertFalse(try bcryptMatches(otp + "x", anna.passwordHash))
        XCTAssertFalse(added.stdoutText.contains(anna.passwordHash))

        // Refusals: a taken name, an unknown extension, a short password — exit status 1, a clear message, nothing stored.
        let duplicate = try faxgate(["user", "add", "anna"])
        XCTAssertNotEqual(duplicate.status, 0)
        XCTAssertTrue(duplicate.stderrText.contains("a user named anna exists already"), duplicate.stderrText)
        XCTAssertFalse(duplicate.stdoutText.contains("one-time password"), "no password for a user that was not added")
        let unknown = try faxgate(["user", "add", "bert", "--extension", "Empfang", "--extension", "Nowhere"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderrText.contains("unknown extension 'Nowhere'"), unknown.stderrText)
        let badName = try faxgate(["user", "add", "Bert Brecht"])
        XCTAssertNotEqual(badName.status, 0)
        let short = try faxgate(["user", "add", "bert", "--password-stdin"], stdin: "too-short\n")
        XCTAssertNotEqual(short.status, 0)
        XCTAssertTrue(short.stderrText.contains("at least 12"), short.stderrText)
        let noBert = try await storage.user(name: "bert")
        XCTAssertNil(noBert)

        // --password-stdin: the given password, no one-time password printed, no change forced.
        let chosen = "Korrekt Pferd Batterie 42"
        let bertAdded = try faxgate(["user", "add", "bert", "--extension", "Labor", "--password-stdin"], stdin: chosen + "\n")
        XCTAssertEqual(bertAdded.status, 0, bertAdded.stderrText)
        XCTAssertFalse(bertAdded.stdoutText.contains("one-time password"))
        var bert = try await XCTUnwrapAsync(try await storage.user(name: "bert"))
        XCTAssertEqual(bert.role, .user)
        XCTAssertEqual(bert.extensions, ["Labor"])
        XCTAssertFalse(bert.mustChangePassword)
        XCTAssertTrue(try bcryptMatches(chosen, bert.passwordHash))

        // disable ends bert's sessions, not anna's.
        let now = Date()
        func session(_ id: String, _ user: WebUser) -> WebSession {
            WebSession(idHash: id, userID: user.id!, createdAt: now, lastSeenAt: now, secondFactorVerified: true, csrfToken: "t", clientAddress: "192.0.2.1")
        }
        try await storage.insertSession(session("b1", bert))
        try await storage.insertSession(session("b2", bert))
        try await storage.insertSession(session("a1", anna))
        let disabled = try faxgate(["user", "disable", "bert"])
        XCTAssertEqual(disabled.status, 0, disabled.stderrText)
        XCTAssertTrue(disabled.stdoutText.contains("2 session(s) ended"), disabled.stdoutText)
        let b1 = try await storage.session(idHash: "b1"), b2 = try await storage.session(idHash: "b2")
        XCTAssertNil(b1)
        XCTAssertNil(b2)
        let a1 = try await storage.session(idHash: "a1")
        XCTAssertNotNil(a1, "another user's session stays")
        bert = try await XCTUnwrapAsync(try await storage.user(name: "bert"))
        XCTAssertTrue(bert.disabled)
        let enabled = try faxgate(["user", "enable", "bert"])
        XCTAssertEqual(enabled.status, 0, enabled.stderrText)
        let bertEnabled = try await storage.user(name: "bert")
        XCTAssertEqual(bertEnabled?.disabled, false)

        // reset --totp: new one-time password, lockout cleared, TOTP and recovery codes gone, sessions ended.
        var locked = try await XCTUnwrapAsync(try await storage.user(name: "anna"))
        locked.failedLogins = 9
        locked.lockedUntil = now.addingTimeInterval(3600)
        locked.totpSecret = Array(repeating: 7, count: 20)
        locked.totpLastCounter = 12345
        locked.recoveryCodeHashes = ["$2b$12$a", "$2b$12$b"]
        locked.mustChangePassword = false
        try await storage.updateUser(locked)
        let listedLocked = try faxgate(["user", "list", "--json"])
        let lockedRow = try XCTUnwrap(try jsonLines(listedLocked.stdoutText).first { $0["name"] as? String == "anna" })
        XCTAssertEqual(lockedRow["totpEnrolled"] as? Bool, true)
        XCTAssertNotNil(lockedRow["lockedUntil"] as? String, "the lockout shows in the list")
        let reset = try faxgate(["user", "reset", "anna", "--totp"])
        XCTAssertEqual(reset.status, 0, reset.stderrText)
        let otp2 = try oneTimePassword(in: reset)
        XCTAssertNotEqual(otp2, otp)
        let annaReset = try await XCTUnwrapAsync(try await storage.user(name: "anna"))
        XCTAssertEqual(annaReset.failedLogins, 0)
        XCTAssertNil(annaReset.lockedUntil)
        XCTAssertNil(annaReset.totpSecret, "the admin enrols TOTP again at the next login")
        XCTAssertNil(annaReset.totpLastCounter)
        XCTAssertEqual(annaReset.recoveryCodeHashes, [])
        XCTAssertTrue(annaReset.mustChangePassword)
        XCTAssertTrue(try bcryptMatches(otp2, annaReset.passwordHash))
        XCTAssertFalse(try bcryptMatches(otp, annaReset.passwordHash), "the old password no longer works")
        let a1AfterReset = try await storage.session(idHash: "a1")
        XCTAssertNil(a1AfterReset, "a reset ends the user's sessions")

        let ext = try faxgate(["user", "extensions", "bert", "Empfang", "Labor"])
        XCTAssertEqual(ext.status, 0, ext.stderrText)
        let bertExt = try await storage.user(name: "bert")
        XCTAssertEqual(bertExt?.extensions, ["Empfang", "Labor"])
        let extBad = try faxgate(["user", "extensions", "bert", "Keller"])
        XCTAssertNotEqual(extBad.status, 0)
        XCTAssertTrue(extBad.stderrText.contains("unknown extension 'Keller'"), extBad.stderrText)
        let missing = try faxgate(["user", "disable", "carl"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderrText.contains("no user named carl"), missing.stderrText)

        // list: state, never credentials.
        let list = try faxgate(["user", "list", "--json"])
        XCTAssertEqual(list.status, 0, list.stderrText)
        let rows = try jsonLines(list.stdoutText)
        XCTAssertEqual(rows.map { $0["name"] as? String }, ["anna", "bert"])
        XCTAssertEqual(rows[0]["role"] as? String, "admin")
        XCTAssertEqual(rows[0]["totpEnrolled"] as? Bool, false)
        XCTAssertEqual(rows[1]["extensions"] as? [String], ["Empfang", "Labor"])
        XCTAssertFalse(list.stdoutText.contains("$2b$"), "no hash in the listing")
        XCTAssertFalse(list.stdoutText.lowercased().contains("secret"))
        let table = try faxgate(["user", "list"])
        XCTAssertTrue(table.stdoutText.contains("anna") && table.stdoutText.contains("Empfang, Labor"), table.stdoutText)

        let removed = try faxgate(["user", "remove", "bert"])
        XCTAssertEqual(removed.status, 0, removed.stderrText)
        let users = try await storage.users().map(\.name)
        XCTAssertEqual(users, ["anna"])

        // audit: every change, newest first, by cli:<unix user> from "local"; the refused attempts wrote nothing.
        let me = try runTool("id", ["-un"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let audit = try faxgate(["audit", "--json"])
        XCTAssertEqual(audit.status, 0, audit.stderrText)
        let entries = try jsonLines(audit.stdoutText)
        XCTAssertEqual(entries.map { "\($0["action"] as? String ?? "?") \($0["target"] as? String ?? "?")" }, [
            "user.remove user bert", "user.extensions user bert", "user.reset user anna", "user.enable user bert",
            "user.disable user bert", "user.add user bert", "user.add user anna",
        ])
        XCTAssertTrue(entries.allSatisfy { $0["actor"] as? String == "cli:\(me)" }, "\(entries.map { $0["actor"] ?? "" })")
        XCTAssertTrue(entries.allSatisfy { $0["clientAddress"] as? String == "local" })
        XCTAssertTrue((entries[4]["detail"] as? String ?? "").contains("2 session(s) ended"))
        XCTAssertFalse(audit.stdoutText.contains(otp) || audit.stdoutText.contains(otp2) || audit.stdoutText.contains(chosen),
                       "no password in the audit trail")
        let limited = try faxgate(["audit", "--limit", "2"])
        XCTAssertEqual(limited.stdoutText.split(separator: "\n").count, 3, "header and two entries: \(limited.stdoutText)")
        XCTAssertTrue(limited.stdoutText.contains("cli:\(me)"))
    }

    /// XCTUnwrap for a value an `await` produced (XCTUnwrap's autoclosure cannot await).
    func XCTUnwrapAsync<T>(_ value: T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
        try XCTUnwrap(value, file: file, line: line)
    }

    func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }
}
