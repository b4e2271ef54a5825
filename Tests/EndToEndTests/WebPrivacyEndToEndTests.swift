import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// The privacy pages of a running `faxgate serve`: an admin made by `faxgate user add` and logged in through the
/// real login (TOTP) in headless Chromium creates a snapshot over HTTP; the passphrase on the page opens the
/// download with bsdtar, and is then found in none of the daemon's files — database, WAL, spool, its own log files
/// and stderr — nor in the audit trail.
final class WebPrivacyEndToEndTests: XCTestCase {
    func testSnapshotFromThePage_passphraseOpensIt_andIsNowhereInTheDaemonsFiles() async throws {
        let work = try TemporaryDirectory("privacy-web-e2e")
        let h = try GatewayHarness()
        defer { h.shutdown() }
        try await h.startGateway()
        // A received fax, so the database, spool and logs hold something.
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: false)
        let call = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112299", to: "100", document: source.sff))
        XCTAssertTrue(call.accepted)
        _ = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 60)
        let deadline = Date().addingTimeInterval(30)
        while await BrowserEndToEndTests.get(h.webURL + "/login") == nil {
            guard Date() < deadline else { throw ToolError(description: "faxgate serve does not answer on \(h.webURL)") }
            try await Task.sleep(for: .milliseconds(200))
        }

        let added = try runTool(GatewayHarness.faxgateBinary, ["user", "add", "--admin", "chef", "-c", h.configPath]).stdoutText
        let password = try XCTUnwrap(added.split(separator: "\n").first { $0.hasPrefix("one-time password: ") }?.split(separator: " ").last)
        let state = work.path + "/admin-cookies.json"
        let login = try runTool(BrowserEndToEndTests.python, [BrowserEndToEndTests.browserDir + "/flow_login.py", "--base", h.webURL,
                                                              "--shots", work.path + "/shots", "--state", state, "--lang", "de",
                                                              "--user", "chef", "--password", String(password)], check: false)
        XCTAssertTrue(login.stdoutText.contains("\"ok\": true"), String(login.stdoutText.suffix(2000)) + String(login.stderrText.suffix(2000)))
        let client = try WebClient(base: h.webURL, cookieState: state)

        let form = try await client.form("/admin/privacy/snapshots", id: "snapshot-create")
        XCTAssertNotNil(form["csrf"])
        let created = try await client.post("/admin/privacy/snapshots", form)
        XCTAssertEqual(created.status, 200, String(created.text.prefix(2000)))
        let passphrase = try XCTUnwrap(Self.element("passphrase", in: created.text))
        let name = try XCTUnwrap(Self.element("snapshot-name", in: created.text))
        XCTAssertEqual(passphrase.count, 35)

        let download = try await client.request("/admin/privacy/snapshots/\(name)/download")
        XCTAssertEqual(download.status, 200)
        let archive = work.path + "/snapshot.zip"
        try download.data.write(to: URL(fileURLWithPath: archive))
        let out = work.path + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try runTool("bsdtar", ["-x", "-f", archive, "-C", out, "--passphrase", passphrase])
        let logs = try FileManager.default.contentsOfDirectory(atPath: out + "/logs")
        XCTAssertFalse(logs.isEmpty, "the daemon's log files are in the snapshot")
        let allLogs = try logs.map { try String(contentsOfFile: out + "/logs/" + $0, encoding: .utf8) }.joined()
        XCTAssertFalse(allLogs.contains("1112299"), "the caller's number in the snapshot")

        // The admin's actions are audited; the passphrase is in none of the daemon's files, nor on its stderr.
        let audit = try runTool(GatewayHarness.faxgateBinary, ["audit", "--json", "--actor", "chef", "-l", "50", "-c", h.configPath]).stdoutText
        XCTAssertTrue(audit.contains("privacy.snapshot.create") && audit.contains("privacy.snapshot.download"), audit)
        _ = h.stopGateway()
        let needle = Data(passphrase.utf8)
        let e = FileManager.default.enumerator(atPath: h.dir.path)
        var scanned = 0
        while let rel = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            let p = h.dir.path + "/" + rel
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue,
                  let data = FileManager.default.contents(atPath: p) else { continue }
            scanned += 1
            XCTAssertNil(data.range(of: needle), "the passphrase is in \(rel)")
        }
        XCTAssertGreaterThan(scanned, 3)
        XCTAssertFalse(h.gatewayLog().contains(passphrase), "the passphrase is in the daemon's stderr")
        XCTAssertFalse(audit.contains(passphrase))
    }

    static func element(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\""), let close = html[start.upperBound...].firstIndex(of: ">"),
              let end = html[close...].range(of: "</") else { return nil }
        return String(html[html.index(after: close)..<end.lowerBound])
    }
}
