import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Privacy end to end: a real reception by `faxgate serve` under strace (every connect() logged), then
/// retention run by the CLI on the backdated call, then a byte scan of the whole spool.
final class PrivacyEndToEndTests: XCTestCase {
    /// Starts `faxgate serve` under `strace -f`, so every connection attempt of every thread is recorded.
    func startTracedGateway(_ h: GatewayHarness, trace: String) async throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try resolveExecutable("strace"))
        p.arguments = ["-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", trace, GatewayHarness.faxgateBinary, "serve", "-c", h.configPath]
        FileManager.default.createFile(atPath: h.logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: h.logPath))
        p.standardOutput = log; p.standardError = log; p.standardInput = FileHandle.nullDevice
        try p.run()
        try await h.simulator.waitForListen(timeout: .seconds(60))
        return p
    }

    /// SIGTERM to faxgate itself (strace's child); strace exits with it.
    func stop(_ strace: Process) {
        let children = (try? String(contentsOfFile: "/proc/\(strace.processIdentifier)/task/\(strace.processIdentifier)/children", encoding: .utf8)) ?? ""
        for pid in children.split(separator: " ").compactMap({ Int32($0) }) { kill(pid, SIGTERM) }
        strace.waitUntilExit()
    }

    func testReception_contactsOnlyConfiguredLoopbackPorts_thenRetentionLeavesNothingBehind() async throws {
        let h = try GatewayHarness(.init(smtpSecurity: "starttls"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("privacy-e2e")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        let trace = work.path + "/connect.trace"
        let gateway = try await startTracedGateway(h, trace: trace)
        var stopped = false
        defer { if !stopped { stop(gateway) } }

        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(
            from: "+49301112223", to: "100", document: source.sff, rate: 14400, fine: true, remoteStationID: "+49 30 1112223"))
        XCTAssertTrue(result.accepted)
        _ = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 60)
        _ = try await h.waitForJournal { $0.first?.state == .mailed }
        stop(gateway); stopped = true

        // Egress: only the simulator's port and the SMTP port, only on loopback; no DNS, no resolver sockets.
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
        let allowedPorts: Set<Int> = [Int(h.simulator.port), h.mail.smtpStartTLSPort]
        let port = try NSRegularExpression(pattern: #"sin6?_port=htons\((\d+)\)"#)
        var contacted: Set<String> = []
        for line in lines where line.contains("connect(") || line.contains("htons(") {
            let ns = line as NSString
            if line.contains("AF_INET") {
                let m = try XCTUnwrap(port.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)), line)
                let p = Int(ns.substring(with: m.range(at: 1)))!
                let loopback = line.contains("inet_addr(\"127.0.0.1\")") || line.contains("\"::1\"")
                XCTAssertTrue(loopback, "non-loopback connection: \(line)")
                XCTAssertTrue(allowedPorts.contains(p), "unexpected port \(p): \(line)")
                contacted.insert("\(loopback ? "loopback" : "?"):\(p)")
            } else if line.contains("AF_UNIX") {
                // glibc probes nscd (absent here: ENOENT); a reachable nscd or systemd-resolved would be a lookup.
                let probedMissingNscd = line.contains("/var/run/nscd/socket") && line.contains("ENOENT")
                XCTAssertTrue(probedMissingNscd, "local socket contacted: \(line)")
            }
            XCTAssertFalse(line.contains("htons(53)"), "DNS traffic: \(line)")
        }
        XCTAssertEqual(contacted, Set(allowedPorts.map { "loopback:\($0)" }), "both the CAPI simulator and SMTP must have been contacted")

        // Retention: backdate the call, run the CLI, then scan every byte of the spool.
        let db = h.spool + "/faxgate.sqlite"
        try runTool("sqlite3", [db, "UPDATE call SET startedAt = '2020-01-01 00:00:00.000'"])
        let id = try XCTUnwrap(h.journal().first?.id)
        let chunk = Data(source.sff[source.sff.count / 2 ..< source.sff.count / 2 + 48])
        func scan(_ needle: Data) -> [String] {
            let e = FileManager.default.enumerator(atPath: h.spool)
            var hits: [String] = []
            while let rel = e?.nextObject() as? String {
                if let d = FileManager.default.contents(atPath: h.spool + "/" + rel), d.range(of: needle) != nil { hits.append(rel) }
            }
            return hits
        }
        XCTAssertFalse(scan(chunk).isEmpty, "the document should be in the spool before retention")
        XCTAssertFalse(scan(Data("1112223".utf8)).isEmpty, "the caller should be in the journal before retention")

        let dry = try runTool(GatewayHarness.faxgateBinary, ["retention", "run", "--dry-run", "-c", h.configPath])
        XCTAssertTrue(dry.stdoutText.contains("received_faxes (90 days): 1 expired"), dry.stdoutText)
        XCTAssertFalse(scan(chunk).isEmpty, "dry run changed something")

        let run = try runTool(GatewayHarness.faxgateBinary, ["retention", "run", "-c", h.configPath])
        XCTAssertTrue(run.stdoutText.contains("deleted 1 item(s)"), run.stdoutText)
        for needle in ["1112223", "incoming/\(id).sff", "Fax von"].map({ Data($0.utf8) }) + [chunk] {
            XCTAssertEqual(scan(needle), [], "found \(String(decoding: needle.prefix(20), as: UTF8.self)) after retention")
        }
        XCTAssertEqual(try h.journal().count, 0)
        let audit = try runTool(GatewayHarness.faxgateBinary, ["retention", "audit", "-c", h.configPath])
        XCTAssertTrue(audit.stdoutText.contains("retention  received_faxes: 1 item(s)"), audit.stdoutText)
        // The daily log file exists, and holds pseudonyms only (it is always redacted).
        let logs = try FileManager.default.contentsOfDirectory(atPath: h.spool + "/log")
        XCTAssertEqual(logs.count, 1, "\(logs)")
    }
}
