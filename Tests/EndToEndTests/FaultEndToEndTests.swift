import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Things going wrong around a reception: the mail server is away, the gateway restarts, the controller
/// connection drops. Nothing may be lost, nothing mailed twice, and nothing may spin.
final class FaultEndToEndTests: XCTestCase {
    func postfix(_ h: GatewayHarness, _ action: String) throws {
        let dir = try XCTUnwrap(h.mail.environment["POSTFIX_CONFIG_DIR"])
        try runTool("postfix", ["-c", dir, action])
    }

    func testSMTPServerDownWhileFaxArrives_mailIsDeliveredOnceAfterItComesBack_acrossARestart() async throws {
        let h = try GatewayHarness()
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try postfix(h, "stop")
        try await h.startGateway()
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
        XCTAssertTrue(result.accepted)

        // The mail waits in the durable outbox and the journal says so; delivery has been tried.
        _ = try await h.waitForJournal { $0.first?.state == .mailQueued }
        let outbox = h.spool + "/outbox"
        let deadline = Date().addingTimeInterval(20)
        var attempts = 0
        while Date() < deadline {
            attempts = Self.envelopes(in: outbox).map { $0["attempts"] as? Int ?? 0 }.max() ?? 0
            if attempts >= 2 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertGreaterThanOrEqual(attempts, 2, "outbox should have retried with back-off\n\(h.gatewayLog())")
        XCTAssertEqual(Self.envelopes(in: outbox).count, 1)
        XCTAssertTrue(h.gatewayLog().contains("mail deferred"), h.gatewayLog())

        // SIGTERM: the gateway stops cleanly and leaves the mail queued on disk.
        XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
        XCTAssertEqual(Self.envelopes(in: outbox).count, 1)

        try postfix(h, "start")
        try await h.startGateway()
        let mails = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)
        XCTAssertEqual(mails.count, 1)
        _ = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(Self.envelopes(in: outbox).count, 0, "delivered mail must leave the outbox")
        // Give a duplicate every chance to show up, then count again.
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 5).count, 1, "mail must arrive exactly once")
    }

    func testControllerConnectionDrops_gatewayReRegistersWithBackOff_withoutBusyLoop() async throws {
        let h = try GatewayHarness()
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try await h.startGateway()
        let registrationsBefore = h.simulator.registrations

        // The controller goes away for 5 s: connections are dropped and refused meanwhile.
        h.simulator.refuseConnections(for: .seconds(5))
        h.simulator.dropAllConnections()
        let cpuBefore = try h.gatewayCPUSeconds()
        try await Task.sleep(for: .seconds(5))
        let cpuUsed = try h.gatewayCPUSeconds() - cpuBefore
        XCTAssertLessThan(cpuUsed, 0.5, "gateway burned \(cpuUsed) s of CPU in a 5 s outage: busy loop?")
        print("CPU during 5 s controller outage: \(cpuUsed) s; connection attempts: \(h.simulator.connectionAttempts)")

        // It comes back by itself, registers and listens again, and takes the next call.
        try await h.simulator.waitForListen(timeout: .seconds(40))
        XCTAssertGreaterThan(h.simulator.registrations, registrationsBefore)
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
        XCTAssertTrue(result.accepted)
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30).count, 1)
        XCTAssertTrue(h.gatewayLog().contains("lost") || h.gatewayLog().contains("Lost"), h.gatewayLog())
    }

    func testControllerDropsMidCall_receptionIsReportedWithWhatArrived() async throws {
        let h = try GatewayHarness(.init(language: "en"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-work")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try await h.startGateway()
        let cut = source.sff.count * 2 / 3
        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(
            from: "+49301112223", to: "100", document: source.sff, fault: .dropConnectionAfterBytes(cut)))
        XCTAssertTrue(result.connectionDropped)
        let mail = try ParsedMail(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 40)[0], in: work)
        XCTAssertTrue(mail.headers["Subject"]?.hasPrefix("Incomplete fax from +49301112223") == true, "\(mail.headers)")
        XCTAssertFalse(mail.attachments.isEmpty, "the pages that arrived must be attached")
        let calls = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(calls[0].outcome, .partial)
        let spooled = try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(calls[0].spoolPath)))
        XCTAssertGreaterThan(spooled.count, 0)
        XCTAssertEqual([UInt8](spooled), Array(source.sff.prefix(spooled.count)), "spool holds exactly what arrived")
    }

    static func envelopes(in dir: String) -> [[String: Any]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap {
            FileManager.default.contents(atPath: dir + "/" + $0).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
    }
}
