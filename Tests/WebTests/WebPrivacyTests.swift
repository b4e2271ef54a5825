@testable import FaxgateApp
import FaxgateCore
@testable import FaxgateWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SQLiteStorage
import TestSupport
import XCTest

/// The privacy pages over real HTTP (Hummingbird's live test server on loopback), with the real SQLite storage,
/// spool and the app's privacy operations — the functions `faxgate gdpr|snapshot|retention` call. Archives are
/// opened with 7-Zip and bsdtar, which nobody here wrote.
final class WebPrivacyTests: XCTestCase {
    /// Everything a test needs: a spool with a journal, a config file, an admin and a user with sessions.
    final class Fixture: @unchecked Sendable {
        let dir: TemporaryDirectory
        let spool: String
        let configPath: String
        let storage: SQLiteStorage
        var config: Configuration
        let logs = PrivacyLogCapture()
        var adminCookie = "", adminCSRF = ""
        var userCookie = "", userCSRF = ""

        init() async throws {
            dir = try TemporaryDirectory("web-privacy")
            spool = dir.path + "/spool"
            for sub in ["incoming", "log", "snapshots"] {
                try FileManager.default.createDirectory(atPath: spool + "/" + sub, withIntermediateDirectories: true)
            }
            configPath = dir.path + "/faxgate.yaml"
            try """
                spool_directory: \(spool)
                smtp: {host: localhost, port: 25, security: none, username: faxgate, password: "Smtp-Secret-4711"}
                mail: {from: fax@example.com}
                capi: {driver: rcapi, host: 127.0.0.1, port: 2662}
                extensions: [{name: Empfang, numbers: ["100"], email: [empfang@example.com]}]
                privacy: {country_code: "49", legal_holds: ["+49 30 5550077"]}
                retention:
                  days: {received_faxes: 90, journal: 365, logs: 30, snapshots: 14}
                """.write(toFile: configPath, atomically: true, encoding: .utf8)
            config = try ConfigLoader.load(path: configPath)
            storage = try SQLiteStorage(path: spool + "/faxgate.sqlite")
            try await storage.migrate()
            // A day of logs for the snapshot, with a caller number that must come out redacted.
            try "2026-01-01T10:00:00.000Z info faxgate.capi: incoming call from=+49 30 5550011 to=100\n"
                .write(toFile: spool + "/log/" + DailyLogFiles.fileName(for: Date()), atomically: true, encoding: .utf8)

            let admin = try await storage.insertUser(WebUser(name: "admin", role: .admin, extensions: [], passwordHash: "x",
                                                             mustChangePassword: false, totpSecret: Array(repeating: 7, count: 20)))
            let user = try await storage.insertUser(WebUser(name: "anna", role: .user, extensions: ["Empfang"], passwordHash: "x",
                                                            mustChangePassword: false))
            (adminCookie, adminCSRF) = try await session(for: admin)
            (userCookie, userCSRF) = try await session(for: user)
        }

        /// A logged-in session (password and second factor done) as the login pages store it.
        func session(for user: WebUser) async throws -> (cookie: String, csrf: String) {
            let id = WebSessions.randomToken(), csrf = WebSessions.randomToken()
            try await storage.insertSession(WebSession(idHash: WebSessions.hash(id), userID: user.id!, createdAt: Date(), lastSeenAt: Date(),
                                                       secondFactorVerified: true, csrfToken: csrf, clientAddress: "127.0.0.1"))
            return ("\(WebCookies.session)=\(id)", csrf)
        }

        /// A received fax from `caller` with a stored PDF carrying `marker`.
        func fax(caller: String, marker: String, ageDays: Double = 1) async throws {
            var call = CallRecord(state: .receiving, startedAt: Date().addingTimeInterval(-ageDays * 86_400), callingNumber: caller,
                                  calledNumber: "100", extensionName: "Empfang")
            call = try await storage.insertCall(call, event: "incoming call")
            call.spoolPath = "\(spool)/incoming/\(call.id!).sff"
            try Data("SFF-\(marker)".utf8).write(to: URL(fileURLWithPath: call.spoolPath!))
            call.state = .mailed
            try await storage.updateCall(call, event: "mailed")
            try await storage.putDocument(StoredDocument(callID: call.id!, kind: "pdf", filename: "fax.pdf", bytes: Array("%PDF-\(marker)".utf8)))
        }

        var application: some ApplicationProtocol {
            var logger = Logger(label: "faxgate.web") { [logs] _ in logs }
            logger.logLevel = .trace
            let config = self.config, storage = self.storage
            // The other areas' operations, which these pages never call (WebAdminTests' placeholder).
            let env = WebEnvironment(
                storage: storage, configuration: { config }, jobs: AdminPagesOnly(), office: AdminPagesOnly(),
                privacy: WebPrivacyOperations(configuration: { config }, configPath: configPath, storage: storage, logger: logger),
                status: AdminPagesOnly(), logger: logger)
            let server = WebServer(environment: env, settings: WebSettings())
            return Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        }

        func allFiles() -> [(String, Data)] {
            let e = FileManager.default.enumerator(atPath: dir.path)
            var out: [(String, Data)] = []
            while let rel = e?.nextObject() as? String {
                var isDir: ObjCBool = false
                let p = dir.path + "/" + rel
                if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue, let d = FileManager.default.contents(atPath: p) {
                    out.append((rel, d))
                }
            }
            return out
        }
    }

    // MARK: Requests

    static func get(_ client: some TestClientProtocol, _ path: String, cookie: String) async throws -> TestResponse {
        try await client.execute(uri: path, method: .get, headers: [.cookie: cookie])
    }

    static func post(_ client: some TestClientProtocol, _ path: String, cookie: String, _ fields: [String: String]) async throws -> TestResponse {
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        return try await client.execute(uri: path, method: .post, headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
                                        body: ByteBuffer(string: body))
    }

    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }

    /// The text of the element with `id` (`<code id="passphrase">…</code>`).
    static func element(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\"") , let close = html[start.upperBound...].firstIndex(of: ">"),
              let end = html[close...].range(of: "</") else { return nil }
        return String(html[html.index(after: close)..<end.lowerBound])
    }

    // MARK: Tests

    /// Create a snapshot on the page, download it, open it with the passphrase the page showed (7-Zip and
    /// bsdtar), and find that passphrase nowhere else: not in the database, spool, logs or web audit.
    func testSnapshot_createDownloadOpen_passphraseOnlyOnThePage() async throws {
        let f = try await Fixture()
        let passphrase = try await f.application.test(.live) { client -> String in
            let created = try await Self.post(client, "/admin/privacy/snapshots", cookie: f.adminCookie, ["csrf": f.adminCSRF, "from": "", "to": ""])
            XCTAssertEqual(created.status, .ok, Self.text(created))
            let html = Self.text(created)
            let passphrase = try XCTUnwrap(Self.element("passphrase", in: html))
            let name = try XCTUnwrap(Self.element("snapshot-name", in: html))
            XCTAssertEqual(passphrase.count, 35, "six groups of five from Passphrase.generate")
            XCTAssertEqual(created.headers[.cacheControl], "no-store")

            // The list shows it — and the passphrase no more.
            let list = try await Self.get(client, "/admin/privacy/snapshots", cookie: f.adminCookie)
            XCTAssertTrue(Self.text(list).contains(name))
            XCTAssertFalse(Self.text(list).contains(passphrase))

            let download = try await Self.get(client, "/admin/privacy/snapshots/\(name)/download", cookie: f.adminCookie)
            XCTAssertEqual(download.status, .ok)
            XCTAssertEqual(download.headers[.contentType], "application/zip")
            XCTAssertEqual(download.headers[.contentDisposition], "attachment; filename=\"\(name).zip\"")
            let zip = f.dir.path + "/downloaded.zip"
            try Data(buffer: download.body).write(to: URL(fileURLWithPath: zip))

            // Any other name, a path included, is not found.
            for bad in ["..%2Ffaxgate.yaml", "faxgate-snapshot-nope", "\(name).json"] {
                let r = try await Self.get(client, "/admin/privacy/snapshots/\(bad)/download", cookie: f.adminCookie)
                XCTAssertEqual(r.status, .notFound, bad)
            }

            // Opened by tools nobody here wrote, with the passphrase from the page; refused with a wrong one.
            let out = f.dir.path + "/out"
            try runTool(privacySevenZip, ["x", "-p\(passphrase)", "-o\(out)", zip])
            let wrong = try runTool(privacySevenZip, ["t", "-pWRONG-WRONG-WRONG", zip], check: false)
            XCTAssertNotEqual(wrong.status, 0)
            let out2 = f.dir.path + "/out2"
            try FileManager.default.createDirectory(atPath: out2, withIntermediateDirectories: true)
            try runTool("bsdtar", ["-x", "-f", zip, "-C", out2, "--passphrase", passphrase])
            let manifest = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
            XCTAssertTrue(manifest.contains("faxgate"))
            let config = try String(contentsOfFile: out2 + "/config/faxgate.yaml", encoding: .utf8)
            XCTAssertFalse(config.contains("Smtp-Secret-4711"), "the snapshot holds the config without secrets")
            let logs = try FileManager.default.contentsOfDirectory(atPath: out + "/logs")
            XCTAssertEqual(logs.count, 1)
            let log = try String(contentsOfFile: out + "/logs/" + logs[0], encoding: .utf8)
            XCTAssertFalse(log.contains("5550011"), log)

            // Delete: POST with the token removes ZIP and sidecar.
            let deleted = try await Self.post(client, "/admin/privacy/snapshots/\(name)/delete", cookie: f.adminCookie, ["csrf": f.adminCSRF])
            XCTAssertEqual(deleted.status, .ok)
            XCTAssertFalse(FileManager.default.fileExists(atPath: f.spool + "/snapshots/\(name).zip"))
            XCTAssertFalse(FileManager.default.fileExists(atPath: f.spool + "/snapshots/\(name).json"))
            return passphrase
        }
        // The passphrase is on no disk (database, WAL, spool, snapshots' sidecar, config), in no log line, in no audit entry.
        try await f.storage.compactAfterDeletion()
        for (path, bytes) in f.allFiles() where !path.hasPrefix("out") && path != "downloaded.zip" {
            XCTAssertNil(bytes.range(of: Data(passphrase.utf8)), "passphrase found in \(path)")
        }
        XCTAssertFalse(f.logs.text.isEmpty, "the capture sees the server's log lines")
        XCTAssertFalse(f.logs.text.contains(passphrase), "passphrase in a log line")
        let audit = try await f.storage.auditEntries(limit: 50, beforeID: nil, actor: nil, action: "privacy.snapshot")
        XCTAssertEqual(Set(audit.map(\.action)), ["privacy.snapshot.create", "privacy.snapshot.download", "privacy.snapshot.delete"])
        XCTAssertTrue(audit.allSatisfy { $0.actor == "admin" && !$0.detail.contains(passphrase) && !$0.target.contains(passphrase) })
        XCTAssertTrue(audit.allSatisfy { $0.clientAddress == "127.0.0.1" }, "\(audit.map(\.clientAddress))")
        // The privacy trail of the storage records the deletion, as `snapshot delete` does.
        let trail = try await f.storage.auditRecords(limit: 10)
        XCTAssertEqual(trail.first { $0.action == "delete" }?.category, "snapshots")
    }

    /// The record page shows the processing activities `faxgate gdpr record --format json` prints, in both languages.
    func testRecordPage_showsTheSameActivitiesAsTheCLI() async throws {
        let f = try await Fixture()
        try await f.fax(caller: "+49 30 5550011", marker: "RECORD")
        try await f.application.test(.live) { client in
            for language in ["de", "en"] {
                let cli = try runTool(PrivacyTestBinary.faxgateBinary, ["gdpr", "record", "--format", "json", "--language", language, "-c", f.configPath])
                let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(cli.stdoutText.utf8)) as? [String: Any])
                let categories = try XCTUnwrap(object["categories"] as? [[String: Any]])
                XCTAssertFalse(categories.isEmpty)
                let page = try await client.execute(uri: "/admin/privacy/record", method: .get,
                                                    headers: [.cookie: f.adminCookie + "; \(WebCookies.language)=\(language)"])
                XCTAssertEqual(page.status, .ok)
                let html = Self.text(page)
                XCTAssertTrue(html.contains(Self.escaped(Strings.text("privacy_record_title", language))), "page not in \(language)")
                let table = try XCTUnwrap(Self.section("record-categories", in: html))
                let shownKeys = table.components(separatedBy: "data-category=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
                XCTAssertEqual(shownKeys, categories.map { $0["key"] as! String }, language)
                for c in categories {
                    XCTAssertTrue(table.contains(Self.escaped(c["data"] as! String)), "\(language): data of \(c["key"]!) missing")
                    XCTAssertTrue(table.contains(Self.escaped(c["purpose"] as! String)), "\(language): purpose of \(c["key"]!) missing")
                }
                for m in object["technical_measures"] as! [String] {
                    XCTAssertTrue(html.contains(Self.escaped(m)), "\(language): measure missing: \(m)")
                }
                // The download is the CLI's JSON, apart from the generation time.
                let json = try await Self.get(client, "/admin/privacy/record.json?lang=\(language)", cookie: f.adminCookie)
                XCTAssertEqual(json.headers[.contentDisposition], "attachment; filename=\"faxgate-art30-record-\(language).json\"")
                var downloaded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(buffer: json.body)) as? [String: Any])
                var printed = object
                downloaded["generated"] = nil; printed["generated"] = nil
                XCTAssertEqual(downloaded as NSDictionary, printed as NSDictionary)
            }
        }
    }

    /// Erasure of a subject under legal hold is refused with the hold's reason and deletes nothing; without a hold
    /// the preview asks, the confirmation erases. The export opens with the passphrase the page showed, once.
    func testSubject_exportOnce_erasureRefusedUnderHold_thenErased() async throws {
        let f = try await Fixture()
        try await f.fax(caller: "+49 30 5550011", marker: "HELDFAX")
        try await f.fax(caller: "030 5550077", marker: "CONFIGHELD")
        try await f.application.test(.live) { client in
            // Export: ZIP with the subject's fax, passphrase shown once, download works once.
            let export = try await Self.post(client, "/admin/privacy/subject/export", cookie: f.adminCookie,
                                             ["csrf": f.adminCSRF, "subject": "030 / 555 00 11"])
            XCTAssertEqual(export.status, .ok)
            let html = Self.text(export)
            let passphrase = try XCTUnwrap(Self.element("passphrase", in: html))
            XCTAssertEqual(Self.element("export-items", in: html), "1")
            let link = try XCTUnwrap(html.range(of: "/admin/privacy/subject/export/").map { String(html[$0.lowerBound...].prefix { $0 != "\"" }) })
            let zip = try await Self.get(client, link, cookie: f.adminCookie)
            XCTAssertEqual(zip.status, .ok)
            XCTAssertEqual(zip.headers[.contentType], "application/zip")
            let again = try await Self.get(client, link, cookie: f.adminCookie)
            XCTAssertEqual(again.status, .notFound, "an export downloads once")
            let zipPath = f.dir.path + "/export.zip"
            try Data(buffer: zip.body).write(to: URL(fileURLWithPath: zipPath))
            let out = f.dir.path + "/export-out"
            try runTool(privacySevenZip, ["x", "-p\(passphrase)", "-o\(out)", zipPath])
            let names = try FileManager.default.subpathsOfDirectory(atPath: out)
            let contents = try names.compactMap { n -> String? in
                var d: ObjCBool = false
                guard FileManager.default.fileExists(atPath: out + "/" + n, isDirectory: &d), !d.boolValue else { return nil }
                return String(decoding: try Data(contentsOf: URL(fileURLWithPath: out + "/" + n)), as: UTF8.self)
            }.joined()
            XCTAssertTrue(contents.contains("HELDFAX"))
            XCTAssertFalse(contents.contains("CONFIGHELD"), "another subject's fax")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.spool + "/privacy/exports"), [], "no export left in the spool")

            // A hold set on the page: erasure refused with its reason; nothing deleted.
            let hold = try await Self.post(client, "/admin/privacy/holds", cookie: f.adminCookie,
                                           ["csrf": f.adminCSRF, "subject": "+49 30 5550011", "reason": "Az. 4 O 123/26"])
            XCTAssertEqual(hold.status, .ok)
            XCTAssertTrue(Self.text(hold).contains("Az. 4 O 123/26"))
            for confirm in ["", "yes"] {
                let refused = try await Self.post(client, "/admin/privacy/subject/erase", cookie: f.adminCookie,
                                                  ["csrf": f.adminCSRF, "subject": "0305550011", "confirm": confirm])
                XCTAssertEqual(refused.status, .conflict)
                XCTAssertEqual(Self.element("hold-reason", in: Self.text(refused)), "Az. 4 O 123/26")
            }
            // `gdpr erase` runs the same function: refused with the same reason.
            let cli = try runTool(PrivacyTestBinary.faxgateBinary, ["gdpr", "erase", "--subject", "030 5550011", "-c", f.configPath], check: false)
            XCTAssertNotEqual(cli.status, 0)
            XCTAssertTrue(cli.stderrText.contains("legal hold") && cli.stderrText.contains("Az. 4 O 123/26"), cli.stderrText)
            // A hold from the configuration refuses too, and says so.
            let configHeld = try await Self.post(client, "/admin/privacy/subject/erase", cookie: f.adminCookie,
                                                 ["csrf": f.adminCSRF, "subject": "+49 30 5550077", "confirm": "yes"])
            XCTAssertEqual(configHeld.status, .conflict)
            XCTAssertTrue(Self.text(configHeld).contains("privacy.legal_holds"))
            let calls = try await f.storage.recentCalls(limit: 10)
            XCTAssertEqual(calls.count, 2, "nothing erased under hold")

            // Released: the preview deletes nothing, the confirmation erases.
            let release = try await Self.post(client, "/admin/privacy/holds/release", cookie: f.adminCookie, ["csrf": f.adminCSRF, "subject": "+49 30 5550011"])
            XCTAssertEqual(release.status, .ok)
            let preview = try await Self.post(client, "/admin/privacy/subject/erase", cookie: f.adminCookie, ["csrf": f.adminCSRF, "subject": "+49 30 5550011"])
            XCTAssertEqual(preview.status, .ok)
            XCTAssertNotNil(Self.section("erase-preview", in: Self.text(preview)))
            let stillThere = try await f.storage.recentCalls(limit: 10)
            XCTAssertEqual(stillThere.count, 2)
            let erased = try await Self.post(client, "/admin/privacy/subject/erase", cookie: f.adminCookie,
                                             ["csrf": f.adminCSRF, "subject": "+49 30 5550011", "confirm": "yes"])
            XCTAssertEqual(erased.status, .ok)
            XCTAssertNotNil(Self.section("erase-done", in: Self.text(erased)))
            let left = try await f.storage.recentCalls(limit: 10)
            XCTAssertEqual(left.map(\.callingNumber), ["030 5550077"])
            XCTAssertFalse(FileManager.default.fileExists(atPath: f.spool + "/incoming/1.sff"))

            // Audited, without the passphrase.
            let audit = try await f.storage.auditEntries(limit: 50, beforeID: nil, actor: "admin", action: "privacy.")
            let actions = Set(audit.map(\.action))
            for expected in ["privacy.subject.export", "privacy.subject.export.download", "privacy.hold.add", "privacy.subject.erase.refused",
                             "privacy.hold.release", "privacy.subject.erase.preview", "privacy.subject.erase"] {
                XCTAssertTrue(actions.contains(expected), "\(expected) not audited: \(actions)")
            }
            XCTAssertFalse(audit.contains { $0.detail.contains(passphrase) || $0.target.contains(passphrase) })
            XCTAssertFalse(f.logs.text.contains(passphrase))
        }
    }

    /// Retention: the preview changes nothing, "run now" deletes what is past its days; both audited, the trail in counts.
    func testRetention_previewThenRun() async throws {
        let f = try await Fixture()
        try await f.fax(caller: "+49 30 5550011", marker: "OLDFAX", ageDays: 200)  // past received_faxes: 90
        try await f.application.test(.live) { client in
            let preview = try await Self.post(client, "/admin/privacy/retention/preview", cookie: f.adminCookie, ["csrf": f.adminCSRF])
            XCTAssertEqual(preview.status, .ok)
            let previewHTML = Self.text(preview)
            let line = try XCTUnwrap(Self.row("received_faxes", in: try XCTUnwrap(Self.section("retention-preview", in: previewHTML))))
            XCTAssertTrue(line.contains("<td class=\"expired\">1</td>"), line)
            let kept = try await f.storage.recentCalls(limit: 10)
            XCTAssertEqual(kept.count, 1, "a preview deletes nothing")

            let run = try await Self.post(client, "/admin/privacy/retention/run", cookie: f.adminCookie, ["csrf": f.adminCSRF])
            XCTAssertEqual(run.status, .ok)
            let runLine = try XCTUnwrap(Self.row("received_faxes", in: try XCTUnwrap(Self.section("retention-run", in: Self.text(run)))))
            XCTAssertTrue(runLine.contains("<td class=\"deleted\">1</td>"), runLine)
            let gone = try await f.storage.recentCalls(limit: 10)
            XCTAssertEqual(gone.count, 0)
            let page = try await Self.get(client, "/admin/privacy/retention", cookie: f.adminCookie)
            XCTAssertTrue(try XCTUnwrap(Self.section("retention-audit", in: Self.text(page))).contains("received_faxes"))
        }
        let audit = try await f.storage.auditEntries(limit: 10, beforeID: nil, actor: "admin", action: "privacy.retention")
        XCTAssertEqual(Set(audit.map(\.action)), ["privacy.retention.preview", "privacy.retention.run"])
    }

    /// A logged-in user who is not an admin gets 403 on every privacy page and action; without a session, the login;
    /// a POST without the session's token is refused before anything happens.
    func testNonAdmin_isRefusedEverywhere() async throws {
        let f = try await Fixture()
        _ = try await WebPrivacyOperations(configuration: { f.config }, configPath: f.configPath, storage: f.storage, logger: Logger(label: "t"))
            .createSnapshot(fromDay: nil, toDay: nil)
        let name = try XCTUnwrap(SnapshotInfo.list(in: f.spool + "/snapshots").first?.name)
        try await f.application.test(.live) { client in
            let gets = ["/admin/privacy", "/admin/privacy/record", "/admin/privacy/record.md", "/admin/privacy/record.json",
                        "/admin/privacy/subject", "/admin/privacy/holds", "/admin/privacy/snapshots",
                        "/admin/privacy/snapshots/\(name)/download", "/admin/privacy/retention", "/admin/privacy/subject/export/x"]
            let posts = ["/admin/privacy/subject/export", "/admin/privacy/subject/erase", "/admin/privacy/holds", "/admin/privacy/holds/release",
                         "/admin/privacy/snapshots", "/admin/privacy/snapshots/\(name)/delete", "/admin/privacy/retention/preview",
                         "/admin/privacy/retention/run"]
            for path in gets {
                let r = try await Self.get(client, path, cookie: f.userCookie)
                XCTAssertTrue([.forbidden, .notFound].contains(r.status), "\(path): \(r.status)")
                let anonymous = try await client.execute(uri: path, method: .get)
                XCTAssertEqual(anonymous.status, .seeOther, path)
                XCTAssertTrue(anonymous.headers[.location]?.hasPrefix("/login") == true, path)
            }
            for path in posts {
                let r = try await Self.post(client, path, cookie: f.userCookie, ["csrf": f.userCSRF, "subject": "+49 30 5550011", "confirm": "yes"])
                XCTAssertTrue([.forbidden, .notFound].contains(r.status), "\(path): \(r.status)")
                let noToken = try await Self.post(client, path, cookie: f.adminCookie, ["subject": "+49 30 5550011", "confirm": "yes"])
                XCTAssertEqual(noToken.status, .forbidden, "\(path) without CSRF token")
            }
        }
        XCTAssertEqual(SnapshotInfo.list(in: f.spool + "/snapshots").map(\.name), [name], "nothing deleted")
        let audit = try await f.storage.auditEntries(limit: 10, beforeID: nil, actor: nil, action: "privacy.")
        XCTAssertEqual(audit, [], "refused requests did nothing to audit")
    }

    // MARK: HTML helpers

    /// The element with `id` up to its closing tag of the same name (tables and sections here do not nest).
    static func section(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\"") else { return nil }
        let open = html[..<start.lowerBound].lastIndex(of: "<")!
        let tag = String(html[html.index(after: open)...].prefix { $0.isLetter })
        guard let end = html[start.upperBound...].range(of: "</\(tag)>") else { return nil }
        return String(html[open..<end.upperBound])
    }

    static func row(_ category: String, in html: String) -> String? {
        guard let start = html.range(of: "<tr data-category=\"\(category)\""), let end = html[start.upperBound...].range(of: "</tr>") else { return nil }
        return String(html[start.lowerBound..<end.upperBound])
    }

    /// What mustache's HTML escaping makes of a text.
    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}

/// Collects every log line the web server and the operations write (to search them for the passphrase).
final class PrivacyLogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        lock.withLock { lines.append("\(event.level) \(event.message) \(event.metadata ?? [:]) \(event.error.map { "\($0)" } ?? "") \(self.metadata)") }
    }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }
}

/// 7-Zip: Debian 12's `7zip` package installs `7zz`, p7zip-full installs `7z`; either opens AES ZIPs.
let privacySevenZip: String = ["7zz", "7z"].first { name in
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
} ?? "7z"

enum PrivacyTestBinary {
    /// The `faxgate` binary beside the test bundle (built with the tests: WebTests depends on it).
    static var faxgateBinary: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("faxgate").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/faxgate").path
    }
}
