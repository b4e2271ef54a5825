import CapiSimulator
import FaxgateCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import XCTest

/// Issue 9, "How it must be proven": a real headless Chromium (Debian's chromium + chromium-driver, driven by
/// Debian's python3-selenium, Tests/Browser/*.py) against `faxgate serve` with real Postfix/Dovecot, the CAPI
/// simulator behind libcapi20, and users made with the real `faxgate user add`. Each flow script prints one JSON
/// object; this test asserts on it AND on the real outcome (the simulator got the pages, Dovecot got the mail
/// at the new address, the snapshot opens with the passphrase the page showed).
///
/// Screenshots of every page in German and English go to $FAXGATE_BROWSER_SHOTS or /tmp/faxgate-browser-shots
/// (emptied at the start, kept afterwards so they can be looked at); the test prints the folder.
final class BrowserEndToEndTests: XCTestCase {
    static let python = "/usr/bin/python3"  // Debian's, which has selenium and pyotp
    static var browserDir: String { packageRoot.appendingPathComponent("Tests/Browser").path }

    /// GET over loopback; (status, body).
    static func get(_ url: String) async -> (Int, Data)? {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 5
        guard let (data, response) = try? await URLSession.shared.data(for: request) else { return nil }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Runs one flow script; returns its JSON. A flow that reports ok=false fails the test with its error,
    /// trace and the page text it saw.
    func flow(_ script: String, _ base: String, shots: String, state: String, lang: String = "de",
              _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let started = Date()
        let run = try runTool(Self.python, [Self.browserDir + "/" + script, "--base", base, "--shots", shots,
                                            "--state", state, "--lang", lang] + args, check: false)
        let text = run.stdoutText.split(separator: "\n").last.map(String.init) ?? ""
        guard let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw ToolError(description: "\(script) printed no JSON (exit \(run.status)):\n\(run.stdoutText.suffix(2000))\n\(run.stderrText.suffix(3000))")
        }
        print("flow \(script): \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \((json["shots"] as? [Any])?.count ?? 0) screenshots")
        if json["ok"] as? Bool != true {
            throw ToolError(description: "\(script) failed: \(json["error"] ?? "?") at \(json["url"] ?? "?")\n\(json["trace"] ?? "")\npage: \(json["page_text"] ?? "")")
        }
        return json
    }

    /// `faxgate user add` as an admin runs it; returns the one-time password it prints.
    func addUser(_ h: GatewayHarness, _ arguments: [String]) throws -> String {
        let run = try runTool(GatewayHarness.faxgateBinary, ["user", "add"] + arguments + ["-c", h.configPath])
        let out = run.stdoutText
        guard let lineText = out.split(separator: "\n").first(where: { $0.hasPrefix("one-time password: ") }),
              let word = lineText.split(separator: " ").last else {
            throw ToolError(description: "faxgate user add printed no one-time password: \(out)")
        }
        return String(word)
    }

    func testBrowser_loginInboxVoicemailSendCancelExtensionSnapshot() async throws {
        let shots = ProcessInfo.processInfo.environment["FAXGATE_BROWSER_SHOTS"] ?? "/tmp/faxgate-browser-shots"
        try? FileManager.default.removeItem(atPath: shots)
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        print("browser screenshots: \(shots)")

        let work = try TemporaryDirectory("browser-work")
        let h = try GatewayHarness(.init(
            voicemail: "max_seconds: 6\nsilence_seconds: 2\nmin_seconds: 1",
            numberLine: "{country_code: \"49\", area_code: \"30\"}"))
        defer { h.shutdown() }
        try await h.startGateway()
        do {
            // The harness gives `faxgate serve` a free loopback web port (8025 may be taken).
            try await scenario(h, base: h.webURL, shots: shots, work: work)
        } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(4000)))
            throw error
        }
    }

    func scenario(_ h: GatewayHarness, base: String, shots: String, work: TemporaryDirectory) async throws {
        // The web server answers (it starts with the gateway's services).
        let deadline = Date().addingTimeInterval(30)
        while await Self.get(base + "/login") == nil {
            guard Date() < deadline else { throw ToolError(description: "faxgate serve does not answer on \(base)") }
            try await Task.sleep(for: .milliseconds(200))
        }

        // Users, with the real CLI: an admin (TOTP required) and an office user of extension Empfang.
        let adminPassword = try addUser(h, ["--admin", "chef"])
        let userPassword = try addUser(h, ["--extension", "Empfang", "anna"])

        // What the user will browse: a 3-page fax and a voicemail, both through libcapi20 from the simulator.
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        let fax = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
        XCTAssertTrue(fax.accepted)
        try runTool("espeak-ng", ["-v", "de", "-w", work.path + "/speech.wav", "Bitte rufen Sie mich zurück, es geht um den Termin."])
        let speech = try VoicemailEndToEndTests.lineAudio(work.path + "/speech.wav", in: work)
        _ = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(from: "+49301112223", to: "100", speech: speech,
                                                                     silenceAfterSpeech: 0.2, speed: 4))
        _ = try await h.waitForJournal(timeout: 60) { calls in calls.filter { $0.state == .mailed }.count >= 2 }
        _ = try h.mail.fetch(user: h.mail.user, expect: 2, timeoutSeconds: 30)

        // 1. Login: the admin's first login (one-time password, TOTP enrolment), then password + TOTP.
        let adminState = work.path + "/admin-cookies.json", userState = work.path + "/user-cookies.json"
        let login = try flow("flow_login.py", base, shots: shots, state: adminState, ["--user", "chef", "--password", adminPassword, "--relogin"])
        XCTAssertEqual(login["relogin_with_totp"] as? Bool, true, "\(login)")
        XCTAssertNotNil(login["totp_secret"] as? String)
        let anna = try flow("flow_login.py", base, shots: shots, state: userState, lang: "en", ["--user", "anna", "--password", userPassword])
        XCTAssertNotEqual(anna["landing"] as? String, "/login")

        // 2. Browse the received fax, 3. play the voicemail.
        let inbox = try flow("flow_inbox.py", base, shots: shots, state: userState)
        let faxSeen = try XCTUnwrap(inbox["fax"] as? [String: Any], "no fax found in /inbox: \(inbox)")
        XCTAssertGreaterThanOrEqual(faxSeen["thumbnails"] as? Int ?? 0, 3, "one thumbnail per page: \(faxSeen)")
        XCTAssertEqual(faxSeen["pdf_status"] as? Int, 200)
        if let pdf = faxSeen["pdf_path"] as? String {
            let info = try runTool("pdfinfo", [pdf]).stdoutText
            XCTAssertNotNil(info.range(of: #"Pages:\s+3\n"#, options: .regularExpression), info)
        } else {
            XCTFail("the fax page offers no PDF: \(faxSeen)")
        }
        let vm = try XCTUnwrap(inbox["voicemail"] as? [String: Any], "no voicemail found in /inbox: \(inbox)")
        XCTAssertGreaterThan(vm["played_seconds"] as? Double ?? 0, 0.5, "\(vm)")
        XCTAssertEqual(vm["src_status"] as? Int, 200)
        // The recording the browser decoded: the caller's speech, within the configured max_seconds (6).
        let duration = vm["duration"] as? Double ?? 0
        XCTAssertTrue(duration > 1 && duration <= 6.5, "voicemail duration \(duration)")
        XCTAssertEqual(inbox["listed"] as? Int, 2, "the fax and the voicemail: \(inbox)")
        XCTAssertEqual(inbox["search_hits"] as? Int, 2, "search by the caller's number finds both: \(inbox)")

        // 4. Send a fax from the browser; the simulator receives its pages.
        h.simulator.setDefaultOutgoingBehaviour(.answer())
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        let sent = try flow("flow_send.py", base, shots: shots, state: userState, ["--number", "030 7654321", "--file", pdf, "--wait-report"])
        XCTAssertEqual(sent["report_is_pdf"] as? Bool, true, "\(sent)")
        let calls = try await h.simulator.waitForOutgoingCalls(1, timeout: .seconds(60))
        XCTAssertTrue(calls.first?.calledNumber.hasSuffix("7654321") == true, "\(calls)")
        XCTAssertEqual(calls.first?.pagesReported, 2)
        let job = try await h.waitForQueue { jobs in jobs.contains { $0.id.map(String.init) == sent["job_id"] as? String && $0.state == .done } }
        XCTAssertFalse(job.isEmpty)

        // 5. Cancel a job that waits for its send time; it is never dialled.
        let later = Date().addingTimeInterval(3600)
        let f = DateFormatter(); f.dateFormat = "yyyy-MM-dd'T'HH:mm"; f.timeZone = .current
        let waiting = try flow("flow_send.py", base, shots: shots, state: userState, lang: "en",
                               ["--number", "030 7654322", "--file", pdf, "--send-at", f.string(from: later)])
        let waitingID = try XCTUnwrap(waiting["job_id"] as? String)
        let cancel = try flow("flow_cancel.py", base, shots: shots, state: userState, ["--job", waitingID])
        XCTAssertEqual(cancel["cancel_form_gone"] as? Bool, true)
        _ = try await h.waitForQueue { jobs in jobs.contains { $0.id.map(String.init) == waitingID && $0.state == .canceled } }
        XCTAssertFalse(h.simulator.outgoingCalls.contains { $0.calledNumber.hasSuffix("7654322") })

        // 6. The admin changes Empfang's address; the next fax is mailed there.
        let newAddress = h.mail.users[2]
        let ext = try flow("flow_extension.py", base, shots: shots, state: adminState, ["--old", h.mail.user, "--new", newAddress])
        XCTAssertEqual(ext["saved"] as? Bool, true, "\(ext)")
        let second = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112224", to: "100", document: source.sff))
        XCTAssertTrue(second.accepted)
        let moved = try h.mail.fetch(user: newAddress, expect: 1, timeoutSeconds: 60)
        XCTAssertEqual(moved.count, 1)
        XCTAssertTrue(String(decoding: moved[0], as: UTF8.self).contains("1112224"), "the new address got another fax")
        let old = try h.mail.fetch(user: h.mail.user, expect: 2, timeoutSeconds: 5)
        XCTAssertEqual(old.count, 2, "the old address got nothing after the change")

        // 7. A snapshot, opened with the passphrase the page showed.
        let snap = try flow("flow_snapshot.py", base, shots: shots, state: adminState)
        let archive = try XCTUnwrap(snap["archive"] as? String), passphrase = try XCTUnwrap(snap["passphrase"] as? String)
        XCTAssertFalse(passphrase.isEmpty)
        XCTAssertEqual(snap["listed"] as? Bool, true, "the new snapshot is on the list: \(snap)")
        XCTAssertEqual(snap["passphrase_on_list"] as? Bool, false, "the passphrase is shown once, not on the list")
        let out = work.path + "/snapshot-out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try runTool("bsdtar", ["-x", "-f", archive, "-C", out, "--passphrase", passphrase])
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/manifest.json"), "snapshot has no manifest")
        // 7-Zip opens it too with the same passphrase (the support side may use either tool).
        let sevenZip = try (try? resolveExecutable("7zz")) ?? resolveExecutable("7z")
        try runTool(sevenZip, ["t", "-p\(passphrase)", archive])
        let wrong = try runTool("bsdtar", ["-x", "-f", archive, "-C", work.path, "--passphrase", "WRONG-WRONG"], check: false)
        XCTAssertNotEqual(wrong.status, 0, "the snapshot opens without its passphrase")

        // The admin's actions in the browser are in the audit trail, with who and from where.
        let audit = try runTool(GatewayHarness.faxgateBinary, ["audit", "--json", "--actor", "chef", "-l", "200", "-c", h.configPath]).stdoutText
        let entries = try audit.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let actions = entries.compactMap { $0["action"] as? String }
        XCTAssertTrue(actions.contains { $0.contains("extension") }, "extension change not audited: \(actions)")
        XCTAssertTrue(actions.contains { $0.contains("snapshot") }, "snapshot not audited: \(actions)")
        XCTAssertTrue(entries.allSatisfy { ($0["clientAddress"] as? String) == "127.0.0.1" }, "the browser came from loopback: \(entries)")

        // Every other page the navigation offers, both languages.
        let tour = try flow("flow_tour.py", base, shots: shots, state: adminState, ["--start", "/admin"])
        XCTAssertEqual((tour["failed"] as? [Any])?.count, 0, "\(tour)")
        let userTour = try flow("flow_tour.py", base, shots: shots, state: userState, ["--start", "/inbox", "--prefix", "/"])
        XCTAssertEqual((userTour["failed"] as? [Any])?.count, 0, "\(userTour)")

        // Screenshots: every one in both languages, real PNGs.
        let pngs = try FileManager.default.contentsOfDirectory(atPath: shots).filter { $0.hasSuffix(".png") && !$0.contains("-error-") }
        XCTAssertGreaterThan(pngs.filter { $0.hasSuffix("-de.png") }.count, 10)
        XCTAssertGreaterThan(pngs.filter { $0.hasSuffix("-en.png") }.count, 10)
        for png in pngs {
            let head = try XCTUnwrap(FileHandle(forReadingAtPath: shots + "/" + png)).readData(ofLength: 8)
            XCTAssertEqual([UInt8](head), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], png)
        }
        print("browser screenshots: \(shots) (\(pngs.count) PNGs)")
    }
}
