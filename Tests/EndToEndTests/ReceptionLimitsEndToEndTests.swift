import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// A received fax past `reception:` limits: the gateway stops storing, hangs up, and mails what arrived.
final class ReceptionLimitsEndToEndTests: XCTestCase {
    func testFaxPastMaxPages_isCutAtThePageBoundary_hungUp_andThePagesBeforeAreMailed() async throws {
        let h = try GatewayHarness(.init(reception: "max_pages: 1"))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-limits")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)  // three pages
        try await h.startGateway()

        let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
        XCTAssertTrue(result.accepted, "\(result)")
        // The gateway hung up the call itself once page 2 began.
        let hangUp = h.simulator.messagesFromGateway.contains { $0.command == .disconnect && $0.subcommand == .req }
        XCTAssertTrue(hangUp, "no DISCONNECT_REQ from the gateway")

        let records = try await h.waitForJournal { $0.first?.state == .mailed }
        let record = try XCTUnwrap(records.first)
        XCTAssertEqual(record.endCause, .limitExceeded, "\(record)")
        XCTAssertEqual(record.outcome, .partial, "a cut fax is never reported complete")
        XCTAssertTrue(record.reasonText?.contains("1 pages") ?? false, "\(String(describing: record.reasonText))")

        let mails = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)
        let mail = try ParsedMail(mails[0], in: work)
        let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: pdf.path)), as: UTF8.self)
        XCTAssertTrue(text.contains("/Type /Pages /Count 1 "), "exactly the page before the limit is mailed")
        // The spool holds page 1 complete and nothing of page 2.
        let spooled = try XCTUnwrap(record.spoolPath)
        XCTAssertLessThan(try Data(contentsOf: URL(fileURLWithPath: spooled)).count, source.sff.count / 2)
    }
}
