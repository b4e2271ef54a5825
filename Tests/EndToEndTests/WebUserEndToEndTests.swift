import CapiSimulator
import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// Issue 9, the user pages over real HTTP (curl with a cookie jar) against `faxgate serve` with the CAPI simulator
/// behind libcapi20, real Postfix/Dovecot and SQLite: /inbox shows only the user's extensions and every id of
/// another extension answers 404 (page, PDF, thumbnail, audio, job, cancel); the PDF download is the stored bytes;
/// a Range request answers 206 with exactly those bytes; a browser submission reaches the simulator and appears
/// in /sent; refused numbers say why and queue nothing; a job waiting for its send time is canceled and recorded.
final class WebUserEndToEndTests: XCTestCase {
    /// One browser: a cookie jar and the CSRF token of its session.
    struct Client {
        let base: String
        let jar: String
        let work: String
        var csrf = ""

        struct Answer {
            var status: Int
            var headers: [String: String]
            var body: [UInt8]
            var text: String { String(decoding: body, as: UTF8.self) }
        }

        /// One request, no redirects followed. `form` is urlencoded; `multipart` are curl -F arguments.
        func request(_ path: String, method: String = "GET", form: [(String, String)]? = nil, multipart: [String]? = nil,
                     headers: [String] = []) throws -> Answer {
            let id = UUID().uuidString.prefix(8)
            let head = "\(work)/h-\(id)", out = "\(work)/b-\(id)"
            var args = ["-s", "-S", "-b", jar, "-c", jar, "-D", head, "-o", out, "-w", "%{http_code}", "-X", method]
            for h in (headers.contains { $0.hasPrefix("Accept-Language:") } ? headers : headers + ["Accept-Language: en"]) { args += ["-H", h] }
            if let form { for (k, v) in form { args += ["--data-urlencode", "\(k)=\(v)"] } }
            if let multipart { for part in multipart { args += ["-F", part] } }
            args.append(base + path)
            let run = try runTool("curl", args)
            var fields: [String: String] = [:]
            for line in (try String(contentsOfFile: head, encoding: .utf8)).split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let body = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data())
            return Answer(status: Int(run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, headers: fields, body: body)
        }

        /// Logs in through /login (the pre-session token, then the session's token from the next page).
        mutating func login(_ name: String, _ password: String) throws {
            let form = try request("/login")
            let pre = try XCTUnwrap(Self.csrf(in: form.text), "no csrf field on /login: \(form.text.prefix(500))")
            let answer = try request("/login", method: "POST", form: [("name", name), ("password", password), ("csrf", pre)])
            XCTAssertEqual(answer.status, 303, "login of \(name): \(answer.text.prefix(500))")
            let page = try request("/send")
            XCTAssertEqual(page.status, 200, "after login, /send: \(page.status) \(page.headers["location"] ?? "")")
            csrf = try XCTUnwrap(Self.csrf(in: page.text))
        }

        static func csrf(in html: String) -> String? {
            guard let r = html.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression) else { return nil }
            return String(html[r].dropFirst(#"name="csrf" value=""#.count).dropLast())
        }
    }

    func testUserPages_onlyOwnExtensions_documentsRangeSendRefuseCancel() async throws {
        let work = try TemporaryDirectory("web-user")
        let h = try GatewayHarness(.init(
            language: "en", mailToFax: true, voicemail: "max_seconds: 6\nsilence_seconds: 2\nmin_seconds: 1"))
        defer { h.shutdown() }
        try await h.startGateway()
        do {
            try await scenario(h, port: h.webPort, work: work)
        } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(5000)))
            throw error
        }
    }

    func addUser(_ h: GatewayHarness, _ name: String, extension ext: String, password: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: GatewayHarness.faxgateBinary)
        p.arguments = ["user", "add", "--extension", ext, "--password-stdin", name, "-c", h.configPath]
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data((password + "\n").utf8))
        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "faxgate user add \(name)")
    }

    func scenario(_ h: GatewayHarness, port: Int, work: TemporaryDirectory) async throws {
        let base = "http://127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(30)
        while await BrowserEndToEndTests.get(base + "/login") == nil {
            guard Date() < deadline else { throw ToolError(description: "faxgate serve does not answer on \(base)") }
            try await Task.sleep(for: .milliseconds(200))
        }
        try addUser(h, "anna", extension: "Empfang", password: "anna-password-1234")
        try addUser(h, "ben", extension: "Labor", password: "ben-password-12345")

        // Anna's fax (with a station id that is markup) and voicemail, Ben's fax: all through libcapi20.
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        var annaCall = SimulatedFaxCall(from: "301112223", to: "100", document: source.sff)
        annaCall.remoteStationID = "<b>x</b>&"
        annaCall.callingTypeAndPlan = 0x21  // national number, ISDN plan: shown in the line's numbering
        let first = try await h.simulator.placeFaxCall(annaCall)
        XCTAssertTrue(first.accepted)
        let second = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49401234567", to: "200", document: source.sff))
        XCTAssertTrue(second.accepted)
        try runTool("espeak-ng", ["-v", "en", "-w", work.path + "/speech.wav", "Please call me back about the appointment."])
        let speech = try VoicemailEndToEndTests.lineAudio(work.path + "/speech.wav", in: work)
        _ = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(from: "+49301112223", to: "100", speech: speech,
                                                                     silenceAfterSpeech: 0.2, speed: 4))
        let calls = try await h.waitForJournal(timeout: 90) { $0.filter { $0.state == .mailed }.count >= 3 }
        let annaFax = try XCTUnwrap(calls.first { $0.kind == .fax && $0.extensionName == "Empfang" }?.id)
        let annaVoice = try XCTUnwrap(calls.first { $0.kind == .voice && $0.extensionName == "Empfang" }?.id)
        let benFax = try XCTUnwrap(calls.first { $0.kind == .fax && $0.extensionName == "Labor" }?.id)

        var anna = Client(base: base, jar: work.path + "/anna.jar", work: work.path)
        var ben = Client(base: base, jar: work.path + "/ben.jar", work: work.path)
        try anna.login("anna", "anna-password-1234")
        try ben.login("ben", "ben-password-12345")
        let nobody = Client(base: base, jar: work.path + "/nobody.jar", work: work.path)

        // The list: Anna's two items, unread, and nothing of Ben's.
        let list = try anna.request("/inbox")
        XCTAssertEqual(list.status, 200)
        XCTAssertTrue(list.text.contains("href=\"/inbox/\(annaFax)\""), list.text)
        XCTAssertTrue(list.text.contains("href=\"/inbox/\(annaVoice)\""))
        XCTAssertFalse(list.text.contains("href=\"/inbox/\(benFax)\""), "Ben's fax is listed for Anna")
        XCTAssertTrue(list.text.contains("action=\"/inbox/\(annaFax)/read\""), "unread items offer 'mark read'")
        let search = try anna.request("/inbox?kind=voice")
        XCTAssertTrue(search.text.contains("/inbox/\(annaVoice)\"") && !search.text.contains("/inbox/\(annaFax)\""), "kind filter")

        // Every document URL of Ben's fax and of Anna's voicemail: 404 for the other user, login for nobody.
        for path in ["/inbox/\(benFax)", "/inbox/\(benFax)/document.pdf", "/inbox/\(benFax)/page/1.png"] {
            XCTAssertEqual(try anna.request(path).status, 404, path)
            XCTAssertEqual(try ben.request(path).status, 200, path)
            XCTAssertEqual(try nobody.request(path).status, 303, "no session: \(path)")
        }
        XCTAssertEqual(try ben.request("/inbox/\(annaVoice)/audio.wav").status, 404)
        XCTAssertEqual(try ben.request("/inbox/\(annaVoice)/audio.wav", headers: ["Range: bytes=0-99"]).status, 404)
        XCTAssertEqual(try ben.request("/inbox/\(annaFax)/read", method: "POST", form: [("csrf", ben.csrf)]).status, 404)

        // Detail: caller in the line's numbering, the station id escaped, thumbnails, marked read by opening.
        let detail = try anna.request("/inbox/\(annaFax)")
        XCTAssertEqual(detail.status, 200)
        XCTAssertTrue(detail.text.contains("+49 30 1112223 / 030 1112223"), "caller as the mail shows it")
        XCTAssertTrue(detail.text.contains("&lt;b&gt;x&lt;/b&gt;&amp;"), "station id escaped")
        XCTAssertFalse(detail.text.contains("<b>x</b>"), "station id is never markup")
        XCTAssertTrue(detail.text.contains("/inbox/\(annaFax)/page/3.png"), "a thumbnail per page")
        XCTAssertFalse(detail.text.contains(h.spool), "the history shows no server path to a user")
        XCTAssertFalse(try anna.request("/inbox").text.contains("action=\"/inbox/\(annaFax)/read\""), "opened = read")

        // The PDF is the stored document, as an attachment with a plain ASCII name.
        let storage = try SQLiteStorage(path: h.spool + "/faxgate.sqlite", readOnly: true)
        let stored = try await storage.documents(callID: annaFax).first { $0.kind == "pdf" }
        let pdf = try anna.request("/inbox/\(annaFax)/document.pdf")
        XCTAssertEqual(pdf.status, 200)
        XCTAssertEqual(pdf.body, stored?.bytes)
        XCTAssertEqual(pdf.headers["content-type"], "application/pdf")
        let disposition = try XCTUnwrap(pdf.headers["content-disposition"])
        XCTAssertTrue(disposition.hasPrefix("attachment; filename=\"") && disposition.hasSuffix(".pdf\""), disposition)
        XCTAssertTrue(disposition.unicodeScalars.allSatisfy { $0.isASCII }, disposition)

        // The thumbnail is a PNG a real decoder reads, as wide as asked, taller than wide (A4 portrait).
        let png = try anna.request("/inbox/\(annaFax)/page/1.png")
        XCTAssertEqual(png.headers["content-type"], "image/png")
        try Data(png.body).write(to: URL(fileURLWithPath: work.path + "/thumb.png"))
        let pnm = try runTool("pngtopnm", [work.path + "/thumb.png"]).stdout
        let header = String(decoding: pnm.prefix(20), as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " })
        XCTAssertEqual(header.first, "P5")
        XCTAssertEqual(header.dropFirst().first, "240")
        XCTAssertGreaterThan(Int(header.dropFirst(2).first ?? "") ?? 0, 300)

        // "Mark read" from the list (POST with the session's token), before the voicemail is opened.
        let marked = try anna.request("/inbox/\(annaVoice)/read", method: "POST", form: [("csrf", anna.csrf), ("back", "/inbox")])
        XCTAssertEqual(marked.status, 303)
        XCTAssertFalse(try anna.request("/inbox").text.contains("action=\"/inbox/\(annaVoice)/read\""), "marked read")
        XCTAssertEqual(try anna.request("/inbox/\(annaFax)/read", method: "POST", form: [("back", "/inbox")]).status, 403, "no token")

        // Voicemail: a WAV, whole and by ranges as a media element asks.
        let voice = try anna.request("/inbox/\(annaVoice)")
        XCTAssertTrue(voice.text.contains("<audio controls"), "the detail page plays the message")
        let wav = try anna.request("/inbox/\(annaVoice)/audio.wav")
        XCTAssertEqual(wav.status, 200)
        XCTAssertEqual(wav.headers["content-type"], "audio/wav")
        XCTAssertEqual(wav.headers["accept-ranges"], "bytes")
        XCTAssertEqual(Array(wav.body.prefix(4)), Array("RIFF".utf8))
        XCTAssertGreaterThan(wav.body.count, 8000, "at least half a second of audio")
        let part = try anna.request("/inbox/\(annaVoice)/audio.wav", headers: ["Range: bytes=100-1123"])
        XCTAssertEqual(part.status, 206)
        XCTAssertEqual(part.headers["content-range"], "bytes 100-1123/\(wav.body.count)")
        XCTAssertEqual(part.body, Array(wav.body[100...1123]))
        let open = try anna.request("/inbox/\(annaVoice)/audio.wav", headers: ["Range: bytes=0-"])
        XCTAssertEqual(open.status, 206)
        XCTAssertEqual(open.body, wav.body)
        let tail = try anna.request("/inbox/\(annaVoice)/audio.wav", headers: ["Range: bytes=-10"])
        XCTAssertEqual(tail.body, Array(wav.body.suffix(10)))
        XCTAssertEqual(try anna.request("/inbox/\(annaVoice)/audio.wav", headers: ["Range: bytes=\(wav.body.count)-"]).status, 416)

        // Send from the browser: a PDF to 030 7654321 reaches the simulator and appears in /sent.
        h.simulator.setDefaultOutgoingBehaviour(.answer())
        let twoPages = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        // The file name says .txt: the type is read from the bytes.
        try FileManager.default.copyItem(atPath: twoPages, toPath: work.path + "/letter.txt")
        let submitted = try anna.request("/send", method: "POST", multipart: [
            "csrf=\(anna.csrf)", "number=030 7654321", "extension=Empfang", "subject=Befund", "files=@\(work.path)/letter.txt",
        ])
        XCTAssertEqual(submitted.status, 303, submitted.text.prefix(800).description)
        let progress = try XCTUnwrap(submitted.headers["location"])
        XCTAssertTrue(progress.hasPrefix("/send/"), progress)
        var jobPath = ""
        for _ in 0..<200 {
            let step = try anna.request(progress)
            if step.status == 303, let location = step.headers["location"] { jobPath = location; break }
            XCTAssertEqual(step.status, 200)
            XCTAssertFalse(step.text.contains("class=\"error\""), "refused: \(step.text)")
            XCTAssertEqual(step.headers["refresh"], "2; url=\(progress)", "the rendering page refreshes itself")
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertTrue(jobPath.hasPrefix("/sent/"), "never queued")
        let jobID = try XCTUnwrap(Int64(jobPath.dropFirst("/sent/".count)))
        let outgoing = try await h.simulator.waitForOutgoingCalls(1, timeout: .seconds(60))
        XCTAssertEqual(outgoing.first?.calledNumber, "0307654321")
        _ = try await h.waitForQueue { $0.contains { $0.id == jobID && $0.state == .done } }
        XCTAssertEqual(outgoing.first?.pagesReported, 2)
        let sentList = try anna.request("/sent")
        XCTAssertTrue(sentList.text.contains("href=\"/sent/\(jobID)\""), "the job is listed in /sent")
        XCTAssertFalse(try ben.request("/sent").text.contains("href=\"/sent/\(jobID)\""), "not for Ben")
        XCTAssertEqual(try ben.request("/sent/\(jobID)").status, 404)
        XCTAssertEqual(try ben.request("/sent/\(jobID)/report.pdf").status, 404)
        let report = try anna.request("/sent/\(jobID)/report.pdf")
        XCTAssertEqual(Array(report.body.prefix(5)), Array("%PDF-".utf8))
        XCTAssertNil(try anna.request("/sent/\(jobID)").headers["refresh"], "a final job's page stands still")

        // Refused numbers: the reason in the user's language, the form again with what was typed, nothing queued.
        let before = try h.queue().count
        let refusals: [(String, String)] = [
            ("030 1234567 3", "more digits (3) follow the number 030 1234567"),
            ("0900 123456", "blocked"),
            ("030\u{200B}1234567", "U+200B"),
        ]
        for (number, reason) in refusals {
            let answer = try anna.request("/send", method: "POST", multipart: [
                "csrf=\(anna.csrf)", "number=\(number)", "extension=Empfang", "subject=Keep me typed", "message=Hello there",
                "files=@\(twoPages)",
            ])
            XCTAssertEqual(answer.status, 422, number)
            XCTAssertTrue(answer.text.contains(reason), "\(number): \(answer.text)")
            XCTAssertTrue(answer.text.contains("value=\"Keep me typed\""), "the subject is kept")
            XCTAssertTrue(answer.text.contains(">Hello there</textarea>"), "the message is kept")
        }
        XCTAssertEqual(try h.queue().count, before, "a refused number queues nothing")
        XCTAssertEqual(h.simulator.outgoingCalls.count, 1)
        // Anna cannot send as Ben's extension.
        let foreign = try anna.request("/send", method: "POST", multipart: [
            "csrf=\(anna.csrf)", "number=030 7654321", "extension=Labor", "files=@\(twoPages)"])
        XCTAssertEqual(foreign.status, 422)
        // Without the CSRF token nothing is taken.
        let forged = try anna.request("/send", method: "POST", multipart: ["number=030 7654321", "extension=Empfang", "files=@\(twoPages)"])
        XCTAssertEqual(forged.status, 403)

        // A fax for in an hour waits; Anna cancels it; Ben cannot; it is never dialled and the history says who.
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd'T'HH:mm"
        let later = try anna.request("/send", method: "POST", multipart: [
            "csrf=\(anna.csrf)", "number=030 7654322", "extension=Empfang", "files=@\(twoPages)",
            "send_at=\(f.string(from: Date().addingTimeInterval(3600)))", "cover=yes", "message=Please see the letter.",
        ])
        let laterProgress = try XCTUnwrap(later.headers["location"], later.text)
        var laterJob: Int64?
        for _ in 0..<200 {
            let step = try anna.request(laterProgress)
            if step.status == 303, let location = step.headers["location"] { laterJob = Int64(location.dropFirst("/sent/".count)); break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let waiting = try XCTUnwrap(laterJob)
        let waitingPage = try anna.request("/sent/\(waiting)")
        XCTAssertTrue(waitingPage.text.contains("action=\"/sent/\(waiting)/cancel\""))
        XCTAssertEqual(waitingPage.headers["refresh"], "3; url=/sent/\(waiting)", "a waiting job's page follows it")
        let queued = try await storage.job(id: waiting)
        XCTAssertEqual(queued?.pages, 3, "cover page + two pages")
        XCTAssertEqual(try ben.request("/sent/\(waiting)/cancel", method: "POST", form: [("csrf", ben.csrf)]).status, 404)
        let stillReady = try await storage.job(id: waiting)
        XCTAssertEqual(stillReady?.state, .ready)
        let canceled = try anna.request("/sent/\(waiting)/cancel", method: "POST", form: [("csrf", anna.csrf)])
        XCTAssertEqual(canceled.status, 200)
        XCTAssertTrue(canceled.text.contains("The job was canceled."), canceled.text)
        XCTAssertFalse(canceled.text.contains("action=\"/sent/\(waiting)/cancel\""))
        let afterCancel = try await storage.job(id: waiting)
        XCTAssertEqual(afterCancel?.state, .canceled)
        let events = try await storage.jobEvents(jobID: waiting).map(\.text)
        XCTAssertTrue(events.contains("canceled by web:anna"), "\(events)")
        let audit = try await storage.auditEntries(limit: 50, beforeID: nil, actor: "anna", action: "job.cancel")
        XCTAssertEqual(audit.first?.target, "job \(waiting)")
        XCTAssertEqual(h.simulator.outgoingCalls.count, 1, "the canceled job was never dialled")

        // Resend (the rules of `faxgate resend`): not for Ben; for Anna a new job that is dialled now.
        XCTAssertEqual(try ben.request("/sent/\(waiting)/resend", method: "POST", form: [("csrf", ben.csrf)]).status, 404)
        let resent = try anna.request("/sent/\(waiting)/resend", method: "POST", form: [("csrf", anna.csrf)])
        XCTAssertEqual(resent.status, 303, resent.text)
        let newJob = try XCTUnwrap(resent.headers["location"].flatMap { Int64($0.dropFirst("/sent/".count)) })
        XCTAssertNotEqual(newJob, waiting)
        _ = try await h.waitForQueue { $0.contains { $0.id == newJob && $0.state == .done } }
        XCTAssertEqual(h.simulator.outgoingCalls.last?.calledNumber, "0307654322")
        let resendAudit = try await storage.auditEntries(limit: 50, beforeID: nil, actor: "anna", action: "job.resend")
        XCTAssertEqual(resendAudit.first?.detail, "queued as job \(newJob)")

        // A submission stored but not yet rendered when the gateway dies is rendered at the next start, once.
        let dialledBefore = h.simulator.outgoingCalls.count
        let interrupted = try anna.request("/send", method: "POST", multipart: [
            "csrf=\(anna.csrf)", "number=030 7654323", "extension=Empfang", "files=@\(twoPages)"])
        XCTAssertEqual(interrupted.status, 303)
        _ = h.stopGateway(signal: SIGKILL)
        try await h.startGateway()
        let intakes = try await storage.intakes(source: "web", movedOnServer: false)
        let intakeID = try XCTUnwrap(Int64(try XCTUnwrap(interrupted.headers["location"]).dropFirst("/send/".count)))
        XCTAssertTrue(intakes.contains { $0.id == intakeID }, "the submission was recorded before the answer")
        let resumed = try await h.waitForQueue(timeout: 60) { $0.contains { $0.number == "+49307654323" && $0.state == .done } }
        XCTAssertEqual(resumed.filter { $0.number == "+49307654323" }.count, 1, "exactly one job")
        XCTAssertEqual(h.simulator.outgoingCalls.count, dialledBefore + 1)
        let followed = try anna.request("/send/\(intakeID)")
        XCTAssertEqual(followed.status, 303, "after the restart the status page still finds the job")

        // The same pages in German.
        let german = try anna.request("/sent/\(newJob)", headers: ["Accept-Language: de"])
        XCTAssertTrue(german.text.contains("Sendebericht (PDF)") && german.text.contains("gesendet"), german.text)
    }
}
