import CapiSimulator
import FaxgateCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import VoiceAudio
import XCTest

/// Issue 9, office settings (README "Settings: file and web"): with a running `faxgate serve`, an admin changes an
/// extension's address over HTTP and the NEXT fax from the simulator reaches the new address at the real
/// Dovecot, without a restart; an invalid edit is refused with `config check`'s text and changes nothing;
/// `config export` round-trips through `config check`; a file edited while the web edited too stops `serve`
/// with the way out, and `config import` resolves it.
final class WebSettingsEndToEndTests: XCTestCase {
    func testWebEdit_appliesToTheNextFax_invalidRefused_exportRoundTrips_conflictRefusesStart() async throws {
        let work = try TemporaryDirectory("settings-work")
        let h = try GatewayHarness()
        let base = h.webURL
        defer { h.shutdown() }
        try await h.startGateway()
        do {
            try await scenario(h, base: base, work: work)
        } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(4000)))
            throw error
        }
    }

    /// An admin made with the real `faxgate user add`, logged in through the real login (password change, TOTP
    /// enrolment) in headless Chromium; its session cookies drive the HTTP requests.
    func adminSession(_ h: GatewayHarness, work: TemporaryDirectory) throws -> WebClient {
        let added = try runTool(GatewayHarness.faxgateBinary, ["user", "add", "--admin", "chef", "-c", h.configPath]).stdoutText
        let password = try XCTUnwrap(added.split(separator: "\n").first { $0.hasPrefix("one-time password: ") }?.split(separator: " ").last)
        let state = work.path + "/admin-cookies.json"
        let login = try runTool(BrowserEndToEndTests.python, [BrowserEndToEndTests.browserDir + "/flow_login.py", "--base", h.webURL,
                                                              "--shots", work.path + "/shots", "--state", state, "--lang", "en",
                                                              "--user", "chef", "--password", String(password)], check: false)
        XCTAssertTrue(login.stdoutText.contains("\"ok\": true"), String(login.stdoutText.suffix(2000)) + String(login.stderrText.suffix(2000)))
        return try WebClient(base: h.webURL, cookieState: state)
    }

    func waitForWeb(_ base: String) async throws {
        let deadline = Date().addingTimeInterval(30)
        while await BrowserEndToEndTests.get(base + "/login") == nil {
            guard Date() < deadline else { throw ToolError(description: "faxgate serve does not answer on \(base)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// A greeting uploaded on the web is what the next voice call hears (no restart) and what the page plays;
    /// a file sox cannot read is refused and changes nothing.
    func testGreetingUpload_isPlayedToTheNextCaller_andOnThePage() async throws {
        let work = try TemporaryDirectory("settings-greeting")
        let h = try GatewayHarness(.init(voicemail: "max_seconds: 6\nsilence_seconds: 2\nmin_seconds: 1"))
        defer { h.shutdown() }
        try await h.startGateway()
        do {
            try await waitForWeb(h.webURL)
            let web = try adminSession(h, work: work)
            let upload = work.path + "/greeting.wav"
            try runTool("sox", ["-n", "-r", "22050", "-c", "2", upload, "synth", "1.2", "sine", "300-900"])

            // Garbage is refused with the converter's reason; nothing is stored.
            var form = try await web.form("/admin/extensions/0", id: "greeting-form")
            let garbage = try await web.postMultipart("/admin/extensions/0/greeting", form, file: ("greeting", "greeting.wav", Array("not audio".utf8)))
            XCTAssertEqual(garbage.status, 422, garbage.text)
            XCTAssertTrue(garbage.text.contains("settings-errors"), garbage.text)

            form = try await web.form("/admin/extensions/0", id: "greeting-form")
            let stored = try await web.postMultipart("/admin/extensions/0/greeting", form,
                                                     file: ("greeting", "hello.wav", [UInt8](try Data(contentsOf: URL(fileURLWithPath: upload)))))
            XCTAssertEqual(stored.status, 303, stored.text)

            // What the page plays is the upload as sox converts it (sox dithers: compared by correlation).
            let reference = G711.pcm(fromLine: try GreetingConverter.convert(upload))
            let wav = try await web.request("/admin/extensions/0/greeting.wav")
            XCTAssertEqual(wav.status, 200)
            let page = try WAV.decode(Array(wav.data)).samples
            XCTAssertEqual(page.count, reference.count)
            XCTAssertGreaterThan(AudioCompare.correlation(page, reference), 0.95)

            // The next caller hears exactly what the page plays (the one conversion made at upload), then the beep.
            let call = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
                from: "+49301112223", to: "100", speech: Array(repeating: 0xD5, count: 8000), silenceAfterSpeech: 0.2, speed: 4))
            XCTAssertEqual(call.played.count, page.count + Tone.greetingBeep.count)
            XCTAssertTrue(G711.pcm(fromLine: Array(call.played.prefix(page.count))) == page, "the caller hears the uploaded greeting")
            XCTAssertTrue(Array(call.played.suffix(Tone.greetingBeep.count)) == Tone.greetingBeep)
        } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(4000)))
            throw error
        }
    }

    func scenario(_ h: GatewayHarness, base: String, work: TemporaryDirectory) async throws {
        try await waitForWeb(base)
        // The first start imported the file's office settings: version 1, audited as actor "file".
        let audit = try runTool(GatewayHarness.faxgateBinary, ["audit", "-c", h.configPath, "--action", "settings."]).stdoutText
        XCTAssertTrue(audit.contains("settings.import"), audit)

        // An admin session, through the real login (password change, TOTP enrolment) in headless Chromium.
        let web = try adminSession(h, work: work)

        // The audit trail names the web edit with a readable diff, by the admin.
        defer {
            let trail = (try? runTool(GatewayHarness.faxgateBinary, ["audit", "-c", h.configPath, "--action", "extension."]).stdoutText) ?? ""
            XCTAssertTrue(trail.contains("email \(h.mail.user) → \(h.mail.users[2])"), trail)
            XCTAssertTrue(trail.contains("chef"), trail)
        }

        // 1. Change Empfang's address over HTTP.
        let newAddress = h.mail.users[2]
        var form = try await web.form("/admin/extensions/0", id: "extension-form")
        XCTAssertEqual(form["email"], h.mail.user)
        form["email"] = newAddress
        let saved = try await web.post("/admin/extensions/0", form)
        XCTAssertEqual(saved.status, 303, saved.text)
        XCTAssertEqual(saved.location, "/admin/extensions/0?done=saved")

        // The next fax goes to the new address, no restart.
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: false)
        let call = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112225", to: "100", document: source.sff))
        XCTAssertTrue(call.accepted)
        let moved = try h.mail.fetch(user: newAddress, expect: 1, timeoutSeconds: 60)
        XCTAssertTrue(String(decoding: moved[0], as: UTF8.self).contains("1112225"), "the fax reached the new address")
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 0, timeoutSeconds: 2).count, 0, "nothing at the old address")

        // 2. Invalid edits are refused with config check's texts, and nothing is stored.
        form = try await web.form("/admin/extensions/1", id: "extension-form")
        form["numbers"] = "200, 125"   // 125 is in Empfang's 120-129
        form["formats_other"] = "docx"
        let refused = try await web.post("/admin/extensions/1", form)
        XCTAssertEqual(refused.status, 422)
        XCTAssertTrue(refused.text.contains("settings-errors"), refused.text)
        XCTAssertTrue(refused.text.contains("extensions[1].numbers"), refused.text)
        XCTAssertTrue(refused.text.contains("unknown format &#39;docx&#39;") || refused.text.contains("unknown format 'docx'"), refused.text)
        let after = try await web.form("/admin/extensions/1", id: "extension-form")
        XCTAssertEqual(after["numbers"], "200", "a refused edit stores nothing")

        // 3. A form from before another save says "changed meanwhile" instead of overwriting.
        var stale = try await web.form("/admin/policy", id: "policy-form")
        var fresh = stale
        fresh["max_jobs"] = "40"
        let first = try await web.post("/admin/policy", fresh)
        XCTAssertEqual(first.status, 303, first.text)
        stale["max_jobs"] = "41"
        let lost = try await web.post("/admin/policy", stale)
        XCTAssertEqual(lost.status, 422)
        XCTAssertTrue(lost.text.contains("settings-errors"), lost.text)
        let kept = try await web.form("/admin/policy", id: "policy-form")
        XCTAssertEqual(kept["max_jobs"], "40")

        // Senders: a secret is typed once, never shown again, kept when the field is left empty, never audited.
        var senders = try await web.form("/admin/senders", id: "senders-0")
        XCTAssertEqual(senders["allow"], "alice@example.test")
        senders["secret"] = "Geheim4711"
        let setSecret = try await web.post("/admin/senders/0", senders)
        XCTAssertEqual(setSecret.status, 303, setSecret.text)
        let sendersPage = try await web.request("/admin/senders")
        XCTAssertEqual(sendersPage.status, 200)
        XCTAssertFalse(sendersPage.text.contains("Geheim4711"), "the secret is never shown")
        senders = try await web.form("/admin/senders", id: "senders-0")
        XCTAssertEqual(senders["secret"], "")
        senders["allow"] = "alice@example.test\n@example.org"
        let keep = try await web.post("/admin/senders/0", senders)
        XCTAssertEqual(keep.status, 303, keep.text)
        // Retention days and a legal hold.
        var days = try await web.form("/admin/retention", id: "retention-form")
        days["days_voicemails"] = "30"
        let daysSaved = try await web.post("/admin/retention", days)
        XCTAssertEqual(daysSaved.status, 303, daysSaved.text)
        var hold = try await web.form("/admin/retention", id: "hold-add")
        hold["hold"] = "+49301234567"
        let holdSaved = try await web.post("/admin/retention/holds", hold)
        XCTAssertEqual(holdSaved.status, 303, holdSaved.text)
        let holdRefused = try await web.post("/admin/retention/holds", try await web.form("/admin/retention", id: "hold-add").merging(["hold": "not a subject"]) { $1 })
        XCTAssertEqual(holdRefused.status, 422)
        XCTAssertTrue(holdRefused.text.contains("privacy.legal_holds[1]"), holdRefused.text)
        let trail = try runTool(GatewayHarness.faxgateBinary, ["audit", "-c", h.configPath, "-l", "200"]).stdoutText
        XCTAssertTrue(trail.contains("senders.secret set"), trail)
        XCTAssertFalse(trail.contains("Geheim4711"), "no secret in the audit trail")

        // 4. config export: the file plus the stored office settings; config check passes on it and it exports the same.
        let export = try runTool(GatewayHarness.faxgateBinary, ["config", "export", "-c", h.configPath]).stdoutText
        XCTAssertTrue(export.contains(newAddress), export)
        let exported = work.path + "/exported.yaml"
        try export.write(toFile: exported, atomically: true, encoding: .utf8)
        try runTool("chmod", ["600", exported])
        // config check refuses a world-readable password file (infrastructure, not this test's subject).
        try runTool("chmod", ["600", h.dir.path + "/smtp-password"])
        let check = try runTool(GatewayHarness.faxgateBinary, ["config", "check", "-c", exported], check: false)
        XCTAssertEqual(check.status, 0, check.stderrText)
        let again = try runTool(GatewayHarness.faxgateBinary, ["config", "export", "-c", exported]).stdoutText
        XCTAssertEqual(again, export, "the exported file is the same effective configuration")
        let effective = try ConfigLoader.load(path: exported)
        XCTAssertEqual(effective.extensions[0].email, [newAddress])
        XCTAssertEqual(effective.outgoing.policy.maxJobsPerSenderPerDay, 40)
        XCTAssertEqual(effective.extensions[0].senders.secret, "Geheim4711", "the export carries the secret it kept")
        XCTAssertEqual(effective.extensions[0].senders.allow, ["alice@example.test", "@example.org"])
        XCTAssertEqual(effective.retention.days["voicemails"], 30)
        XCTAssertEqual(effective.privacy.legalHolds, ["+49301234567"])

        // 5. Conflict: the admin edits the file's office sections while the web has edited them too.
        XCTAssertEqual(h.stopGateway(), 0)
        let original = try String(contentsOfFile: h.configPath, encoding: .utf8)
        try original.replacingOccurrences(of: "headline: \"Faxgate Test\"", with: "headline: \"Faxgate Datei\"")
            .write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let serve = try runTool(GatewayHarness.faxgateBinary, ["serve", "-c", h.configPath], check: false)
        XCTAssertEqual(serve.status, 78, serve.stderrText)
        XCTAssertTrue(serve.stderrText.contains("office settings conflict"), serve.stderrText)
        XCTAssertTrue(serve.stderrText.contains("faxgate config export -c \(h.configPath)"), serve.stderrText)
        XCTAssertTrue(serve.stderrText.contains("faxgate config import -c \(h.configPath)"), serve.stderrText)
        let conflictCheck = try runTool(GatewayHarness.faxgateBinary, ["config", "check", "-c", h.configPath], check: false)
        XCTAssertEqual(conflictCheck.status, 78)
        XCTAssertTrue(conflictCheck.stderrText.contains("office settings conflict"), conflictCheck.stderrText)

        // Taking the file's version resolves it: the file's address (the web's edit is replaced), audited.
        try runTool(GatewayHarness.faxgateBinary, ["config", "import", "-c", h.configPath])
        let resolved = try runTool(GatewayHarness.faxgateBinary, ["config", "check", "-c", h.configPath], check: false)
        XCTAssertEqual(resolved.status, 0, resolved.stderrText)
        let imported = try runTool(GatewayHarness.faxgateBinary, ["config", "export", "-c", h.configPath]).stdoutText
        XCTAssertTrue(imported.contains("Faxgate Datei"), imported)
        XCTAssertFalse(imported.contains(newAddress), imported)
        // And a file edit with no web edit since is simply imported at the next start (no conflict).
        try await h.startGateway()
        XCTAssertEqual(try runTool(GatewayHarness.faxgateBinary, ["config", "check", "-c", h.configPath], check: false).status, 0)
    }
}

/// HTTP with the session cookies a browser flow saved: reads a form's fields from the page (hidden csrf and
/// version included) and posts it back urlencoded, without following redirects.
struct WebClient {
    let base: String
    let cookie: String

    init(base: String, cookieState: String) throws {
        self.base = base
        let data = try Data(contentsOf: URL(fileURLWithPath: cookieState))
        let cookies = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        cookie = cookies.compactMap { c in (c["name"] as? String).map { "\($0)=\(c["value"] as? String ?? "")" } }.joined(separator: "; ")
    }

    struct Answer {
        var status: Int
        var data: Data
        var location: String?
        var text: String { String(decoding: data, as: UTF8.self) }
    }

    func request(_ path: String, method: String = "GET", body: Data? = nil,
                 contentType: String = "application/x-www-form-urlencoded") async throws -> Answer {
        var r = URLRequest(url: URL(string: base + path)!)
        r.httpMethod = method
        r.setValue(cookie, forHTTPHeaderField: "Cookie")
        if let body {
            r.httpBody = body
            r.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let delegate = NoRedirects()
        let session = URLSession(configuration: .ephemeral, delegate: delegate, delegateQueue: nil)
        let (data, response) = try await session.data(for: r)
        let http = response as? HTTPURLResponse
        return Answer(status: http?.statusCode ?? 0, data: data, location: http?.value(forHTTPHeaderField: "Location"))
    }

    /// The named form's inputs, selected options, checked boxes and textareas (HTML entities decoded).
    func form(_ path: String, id: String) async throws -> [String: String] {
        let page = try await request(path)
        guard page.status == 200, let start = page.text.range(of: "id=\"\(id)\""),
              let end = page.text.range(of: "</form>", range: start.upperBound..<page.text.endIndex) else {
            throw ToolError(description: "\(path) has no form #\(id) (status \(page.status)): \(page.text.prefix(1500))")
        }
        let html = String(page.text[start.lowerBound..<end.lowerBound])
        var out: [String: String] = [:]
        func attr(_ tag: String, _ name: String) -> String? {
            guard let r = tag.range(of: " \(name)=\""), let e = tag[r.upperBound...].firstIndex(of: "\"") else { return nil }
            return Self.unescape(String(tag[r.upperBound..<e]))
        }
        for match in html.matches(of: /<input[^>]*>/) {
            let tag = String(match.output)
            guard let name = attr(tag, "name"), attr(tag, "type") != "file" else { continue }
            if attr(tag, "type") == "checkbox" && !tag.contains(" checked") { continue }
            out[name] = attr(tag, "value") ?? ""
        }
        for match in html.matches(of: /<select name="([^"]+)"[^>]*>(.*?)<\/select>/) {
            let options = String(match.output.2)
            if let selected = options.firstMatch(of: /<option value="([^"]*)" selected>/) {
                out[String(match.output.1)] = Self.unescape(String(selected.output.1))
            }
        }
        for match in html.matches(of: /<textarea name="([^"]+)"[^>]*>([^<]*)<\/textarea>/) {
            out[String(match.output.1)] = Self.unescape(String(match.output.2))
        }
        return out
    }

    func post(_ path: String, _ fields: [String: String]) async throws -> Answer {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let body = fields.map { "\($0.key.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
            .joined(separator: "&")
        return try await request(path, method: "POST", body: Data(body.utf8))
    }

    /// A multipart/form-data POST: the text fields and one file.
    func postMultipart(_ path: String, _ fields: [String: String], file: (field: String, name: String, bytes: [UInt8])) async throws -> Answer {
        let boundary = "----faxgate-test-\(UUID().uuidString)"
        var body = Data()
        for (k, v) in fields {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n".utf8))
        }
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.field)\"; filename=\"\(file.name)\"\r\nContent-Type: audio/wav\r\n\r\n".utf8))
        body.append(Data(file.bytes))
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        return try await request(path, method: "POST", body: body, contentType: "multipart/form-data; boundary=\(boundary)")
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&#x2F;", with: "/").replacingOccurrences(of: "&#x3D;", with: "=")
            .replacingOccurrences(of: "&#x60;", with: "`").replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Keeps the 303 of a saved form visible to the test.
final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
