import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import VoiceAudio
import XCTest

/// `/metrics` and `/health/*` of a real `faxgate serve`: simulator fax and voice calls in, mails → fax jobs out,
/// then the scrape is parsed by prometheus_client's text parser (Debian's python3-prometheus-client) and its
/// figures are compared with what `faxgate journal --json` and `faxgate queue --json` say.
final class MetricsEndToEndTests: XCTestCase {
    static let python = "/usr/bin/python3"  // Debian's, which has prometheus_client

    struct Sample: Decodable {
        var family: String
        var type: String
        var name: String
        var labels: [String: String]
        var value: Double
    }
    struct Scrape: Decodable {
        var status: Int
        var content_type: String
        var body: String
        var samples: [Sample]
    }

    static func scrape(_ mode: String, _ url: String, headers: [String: String] = [:]) throws -> Scrape {
        let out = try runTool(python, [packageRoot.appendingPathComponent("Tests/Scripts/prometheus_scrape.py").path, mode, url]
                                  + headers.map { "\($0.key)=\($0.value)" })
        return try JSONDecoder().decode(Scrape.self, from: out.stdout)
    }

    /// The value of one sample (0 when the series does not exist yet: a counter that never moved is not emitted).
    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    /// The JSON of /health/ready: check name → (ok, reason).
    static func readiness(_ body: String) throws -> (status: String, checks: [String: (ok: Bool, reason: String)]) {
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        var checks: [String: (Bool, String)] = [:]
        for c in try XCTUnwrap(json["checks"] as? [[String: Any]]) {
            checks[try XCTUnwrap(c["name"] as? String)] = (try XCTUnwrap(c["ok"] as? Bool), try XCTUnwrap(c["reason"] as? String))
        }
        return (try XCTUnwrap(json["status"] as? String), checks)
    }

    /// A mail from the allowed sender with one PDF attachment (Tests/Scripts/make_mail.py, as MailToFaxEndToEndTests).
    static func mail(_ h: GatewayHarness, to: String, subject: String, pdf: String) throws -> [UInt8] {
        let spec: [String: Any] = ["from": "Alice <alice@example.test>", "to": [to], "subject": subject, "headers": [String: String](),
                                   "attachments": [["path": pdf, "type": "application/pdf", "filename": "a.pdf"]]]
        let specPath = h.dir.path + "/spec-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, specPath, specPath + ".eml"])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: specPath + ".eml")))
    }

    /// A second of loud 440 Hz tone in line format (A-law, bit-reversed): speech for the silence detector.
    static func tone(seconds: Double) -> [UInt8] {
        let n = Int(seconds * 8000)
        return G711.lineBytes((0..<n).map { Int16(12000 * sin(2 * Double.pi * 440 * Double($0) / 8000)) })
    }

    func testMetricsMatchTheJournal_labelsCarryNoNumbersOrAddresses_andReadinessFollowsTheLine() async throws {
        // The harness gives the gateway a free loopback web port (webURL).
        let h = try GatewayHarness(.init(mailToFax: true, laborVoicemail: """
            max_seconds: 6
            silence_seconds: 2
            min_seconds: 1
            """, web: "min_free_disk_mb: 1"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("metrics-e2e")
        let base = h.webURL
        try await h.startGateway()
        do {
            try await run(h, work: work, base: base)
        } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(4000)))
            throw error
        }
    }

    func run(_ h: GatewayHarness, work: TemporaryDirectory, base: String) async throws {
        // Ready once the mailbox is connected (IMAP login after start): poll, then every check must say ok.
        var ready = try Self.scrape("get", base + "/health/ready")
        let readyDeadline = Date().addingTimeInterval(30)
        while ready.status != 200 && Date() < readyDeadline {
            try await Task.sleep(for: .milliseconds(300))
            ready = try Self.scrape("get", base + "/health/ready")
        }
        XCTAssertEqual(ready.status, 200, ready.body)
        XCTAssertTrue(ready.content_type.hasPrefix("application/json"), ready.content_type)
        let healthy = try Self.readiness(ready.body)
        XCTAssertEqual(healthy.status, "ready")
        XCTAssertEqual(Set(healthy.checks.keys), ["database", "capi", "smtp", "imap", "disk"], ready.body)
        for (name, check) in healthy.checks { XCTAssertTrue(check.ok, "\(name): \(check.reason)") }
        XCTAssertEqual(try Self.scrape("get", base + "/health/live").status, 200)

        // Traffic: three fax calls (3 pages each, from Ghostscript), one voicemail, two mails → fax.
        let sff = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true).sff
        let callers = ["+49301112223", "+49305556667", "+49301234000"]
        for caller in callers {
            let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: caller, to: "100", document: sff, rate: 14400, fine: true,
                                                                            remoteStationID: "+49 30 1112223"))
            XCTAssertTrue(result.accepted, "\(result)")
        }
        let voice = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49307778889", to: "200", speech: Self.tone(seconds: 2), silenceAfterSpeech: 4, speed: 4))
        XCTAssertNotNil(voice.greetingEndedAt, "the greeting was played")

        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        for number in ["0301111111", "0302222222"] {
            try h.submit(try Self.mail(h, to: "\(number)@fax.example.test", subject: "Metrics \(number)", pdf: pdf))
        }

        // Wait for the journal and the queue to settle: every call mailed, every job final.
        let calls = try await h.waitForJournal(timeout: 90) { calls in
            calls.filter { $0.direction == .incoming }.count == 4 && calls.allSatisfy { $0.state == .mailed || $0.state == .rejected }
        }
        let jobs = try await h.waitForQueue(timeout: 90) { $0.count == 2 && $0.allSatisfy { $0.state.isFinal } }
        // Mails: one per call (3 fax + 1 voice) and one status mail per job. The status mails may still be on
        // their way to Postfix when the queue is final: scrape until the outbox has handed them all over.
        let mails = Double(4 + jobs.count)
        var scrape = try Self.scrape("metrics", base + "/metrics")
        let mailDeadline = Date().addingTimeInterval(30)
        while Self.value(scrape.samples, "faxgate_outbox_total", ["result": "sent"]) < mails && Date() < mailDeadline {
            try await Task.sleep(for: .milliseconds(300))
            scrape = try Self.scrape("metrics", base + "/metrics")
        }
        XCTAssertEqual(scrape.status, 200, scrape.body)
        XCTAssertTrue(scrape.content_type.hasPrefix("text/plain; version=0.0.4"), scrape.content_type)
        let s = scrape.samples
        XCTAssertFalse(s.isEmpty, scrape.body)

        // Figures = journal.
        let faxIn = calls.filter { $0.direction == .incoming && $0.kind == .fax }
        let complete = faxIn.filter { $0.outcome == .complete }
        XCTAssertEqual(complete.count, 3, "the journal's own figure, for the record")
        XCTAssertEqual(Self.value(s, "faxgate_calls_total", ["direction": "incoming", "kind": "fax", "outcome": "complete"]), Double(complete.count))
        for outcome in ["partial", "failed", "rejected"] {
            XCTAssertEqual(Self.value(s, "faxgate_calls_total", ["direction": "incoming", "kind": "fax", "outcome": outcome]),
                           Double(faxIn.filter { $0.outcome?.rawValue == outcome }.count), outcome)
        }
        XCTAssertEqual(Self.value(s, "faxgate_pages_total", ["direction": "incoming"]), Double(faxIn.reduce(0) { $0 + ($1.pages ?? 0) }))
        let voiceIn = calls.filter { $0.kind == .voice }
        XCTAssertEqual(voiceIn.count, 1)
        // Bytes received: the three SFF documents as the simulator sent them, plus the voice recording's spool file.
        let recording = try XCTUnwrap(voiceIn[0].spoolPath)
        let recorded = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: recording)[.size] as? Int)
        XCTAssertGreaterThan(recorded, 8000, "more than a second recorded")
        XCTAssertEqual(Self.value(s, "faxgate_bytes_total", ["direction": "incoming"]), Double(3 * sff.count + recorded))
        XCTAssertEqual(Self.value(s, "faxgate_calls_total", ["direction": "incoming", "kind": "voice", "outcome": voiceIn[0].outcome?.rawValue ?? "?"]), 1)
        XCTAssertEqual(Self.value(s, "faxgate_render_seconds_count", ["stage": "fax_to_mail"]), Double(faxIn.count))
        XCTAssertEqual(Self.value(s, "faxgate_render_seconds_count", ["stage": "voice_to_mail"]), 1)

        let done = jobs.filter { $0.state == .done }
        XCTAssertEqual(done.count, 2)
        XCTAssertEqual(Self.value(s, "faxgate_jobs_total", ["outcome": "done"]), Double(done.count))
        XCTAssertEqual(Self.value(s, "faxgate_jobs_total", ["outcome": "failed"]), Double(jobs.filter { $0.state == .failed }.count))
        XCTAssertEqual(Self.value(s, "faxgate_calls_total", ["direction": "outgoing", "outcome": "success"]), Double(done.count))
        XCTAssertEqual(Self.value(s, "faxgate_pages_total", ["direction": "outgoing"]), Double(jobs.reduce(0) { $0 + $1.pagesSent }))
        XCTAssertEqual(Self.value(s, "faxgate_mail_intake_total", ["source": "imap", "decision": "accepted"]), 2)
        // The watched mailbox also receives the gateway's own fax mails (the extension mails to the same test user):
        // they are decided too (ignored: our own automatic mail). Every decision has its latency.
        XCTAssertEqual(Self.value(s, "faxgate_mail_intake_seconds_count", ["source": "imap"]), Self.value(s, "faxgate_mail_intake_total", ["source": "imap"]))
        XCTAssertEqual(Self.value(s, "faxgate_mail_intake_total", ["source": "imap", "decision": "rejected"]), 0)
        XCTAssertGreaterThan(Self.value(s, "faxgate_render_seconds_count", ["stage": "mail_to_fax"]), 0)
        for state in ["ready", "deferred", "active"] {
            XCTAssertEqual(Self.value(s, "faxgate_queue_jobs", ["state": state]), 0, state)
        }
        XCTAssertEqual(Self.value(s, "faxgate_outbox_total", ["result": "sent"]), mails, "every mail accepted by Postfix, once")
        XCTAssertEqual(Self.value(s, "faxgate_outbox_total", ["result": "failed"]), 0)
        XCTAssertEqual(Self.value(s, "faxgate_outbox_backlog"), 0)
        XCTAssertEqual(Self.value(s, "faxgate_capi_registered"), 1)
        XCTAssertEqual(Self.value(s, "faxgate_bchannels_in_use"), 0)
        XCTAssertGreaterThan(Self.value(s, "faxgate_bchannels_total"), 0)
        XCTAssertEqual(Self.value(s, "faxgate_intake_mailboxes_connected"), 1)

        // Labels: only the fixed enums. No digit in any label value except the histogram bounds Prometheus itself
        // defines (`le`), no '@', and none of the numbers this test used anywhere in the scrape.
        for sample in s where sample.name.hasPrefix("faxgate_") {
            for (key, value) in sample.labels where key != "le" {
                XCTAssertFalse(value.contains { $0.isNumber }, "label \(key)=\(value) of \(sample.name) carries a digit")
                XCTAssertFalse(value.contains("@"), "label \(key)=\(value) of \(sample.name) carries an address")
            }
        }
        XCTAssertFalse(scrape.body.contains("@"), "no address anywhere in the scrape")
        for number in callers + ["+49307778889", "0301111111", "0302222222"] {
            let digits = String(number.filter(\.isNumber).suffix(7))
            XCTAssertFalse(scrape.body.contains(digits), "number \(number) appears in the scrape")
        }

        // Access: loopback may; a request a proxy forwarded from elsewhere (no trusted proxy configured) may not.
        let forwarded = try Self.scrape("get", base + "/metrics", headers: ["X-Forwarded-For": "203.0.113.9"])
        XCTAssertEqual(forwarded.status, 403, forwarded.body)
        XCTAssertEqual(try Self.scrape("get", base + "/health/ready", headers: ["X-Forwarded-For": "203.0.113.9"]).status, 403)

        // The line goes away: not ready, and the JSON says it is the line.
        h.simulator.stop()
        var down = try Self.scrape("get", base + "/health/ready")
        let downDeadline = Date().addingTimeInterval(30)
        while down.status == 200 && Date() < downDeadline {
            try await Task.sleep(for: .milliseconds(300))
            down = try Self.scrape("get", base + "/health/ready")
        }
        XCTAssertEqual(down.status, 503, down.body)
        let unhealthy = try Self.readiness(down.body)
        XCTAssertEqual(unhealthy.status, "not_ready")
        let capi = try XCTUnwrap(unhealthy.checks["capi"])
        XCTAssertFalse(capi.ok)
        XCTAssertTrue(capi.reason.contains("not registered"), capi.reason)
        for name in ["database", "smtp", "imap", "disk"] { XCTAssertEqual(unhealthy.checks[name]?.ok, true, name) }
        XCTAssertEqual(try Self.scrape("get", base + "/health/live").status, 200, "alive though not ready")
        let after = try Self.scrape("metrics", base + "/metrics")
        XCTAssertEqual(Self.value(after.samples, "faxgate_capi_registered"), 0)
    }
}
