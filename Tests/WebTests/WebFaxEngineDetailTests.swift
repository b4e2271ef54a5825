@testable import FaxgateApp
import FaxgateCore
@testable import FaxgateWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import SQLiteStorage
import TestSupport
import XCTest

/// What the fax engine reported (issue 10) on the detail pages, from the typed columns: the admin's call and job,
/// the user's inbox and sent fax, in both languages. Calls without engine facts keep their rows as before.
final class WebFaxEngineDetailTests: XCTestCase {
    typealias F = WebAdminTests.Fixture

    static func get(_ client: some TestClientProtocol, _ path: String, cookie: String, language: String) async throws -> String {
        let r = try await client.execute(uri: path, method: .get, headers: [.cookie: cookie, .acceptLanguage: language])
        XCTAssertEqual(r.status, .ok, path)
        return String(buffer: r.body)
    }

    /// The HTML of `text` as the template escapes it (no markup from stored text).
    static func html(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    func testDetailPages_showEngineFactsPageTableAndTheFailureSentence() async throws {
        let f = try await F()
        let pages = [
            FaxPageStatistics(page: 1, bitRate: 14400, compression: .mmr, fine: true, ecm: true, ecmRetransmittedFrames: 2, badRows: 0),
            FaxPageStatistics(page: 2, bitRate: 9600, compression: .mmr, fine: true, ecm: true, ecmRetransmittedFrames: 11, badRows: nil),
        ]
        let callID = try await f.call(.fax, ext: "Empfang", state: .mailed, at: F.day(0))
        let stored = try await f.storage.call(id: callID)
        var call = try XCTUnwrap(stored)
        call.engine = .software; call.compression = .mmr; call.ecm = true; call.ecmRetransmittedFrames = 13; call.pageStatistics = pages
        call.outcome = .partial
        // The engine's words carry markup: the admin page shows them escaped, the user's page not at all.
        call.t30Failure = T30Failure(kind: .pageRefused, code: 41, text: "<b>ECM page not accepted</b>", bitRate: 9600)
        try await f.storage.updateCall(call, event: "engine facts")
        let plainID = try await f.call(.fax, ext: "Empfang", state: .mailed, at: F.day(1))

        let jobID = try await f.job(ext: "Empfang", number: "+49301234567", state: .deferred, at: F.day(0))
        let storedJob = try await f.storage.job(id: jobID)
        var job = try XCTUnwrap(storedJob)
        job.engine = .software; job.compression = .mr; job.ecm = false; job.lastCause = "faxProtocolError"; job.tries = 2
        job.t30Failure = T30Failure(kind: .trainingFailed, code: 7, text: "Training failed", bitRate: 9600)
        job.nextModem = ModemSettings(maxBitRate: 4800, ecm: false)
        try await f.storage.updateJob(job, expecting: .deferred, event: "engine facts")

        try await f.application.test(.live) { client in
            let en = try await Self.get(client, "/admin/calls/\(callID)", cookie: f.adminCookie, language: "en")
            XCTAssertTrue(en.contains("<th>Fax modem</th><td>software modem</td>"), en)
            XCTAssertTrue(en.contains("<th>Compression</th><td>MMR (T.6)</td>"), en)
            XCTAssertTrue(en.contains("<th>ECM frames resent</th><td>13</td>"), en)
            XCTAssertTrue(en.contains(Self.html("A page arrived too damaged and was refused — poor transmission at 9600 bit/s")), en)
            XCTAssertTrue(en.contains("page_refused, code 41: &lt;b&gt;ECM page not accepted&lt;/b&gt;"), "support details, escaped")
            XCTAssertFalse(en.contains("<b>ECM"), "no markup from stored text")
            XCTAssertTrue(en.contains("id=\"page-stats\""), "the per-page table")
            XCTAssertTrue(en.contains("<td>2</td><td>9600 bit/s</td><td>MMR (T.6)</td>"), en)
            XCTAssertTrue(en.contains("<td>11</td><td>–</td>"), "resent frames and an unknown bad-row count")

            let de = try await Self.get(client, "/admin/calls/\(callID)", cookie: f.adminCookie, language: "de")
            XCTAssertTrue(de.contains("<th>Faxmodem</th><td>Software-Modem</td>"), de)
            XCTAssertTrue(de.contains("Eine Seite kam zu beschädigt an und wurde abgelehnt — schlecht übertragen bei 9600 bit/s"), de)
            XCTAssertTrue(de.contains("Seiten im Einzelnen"), de)

            // A call without engine facts (a controller with fax firmware) has none of these rows.
            let plain = try await Self.get(client, "/admin/calls/\(plainID)", cookie: f.adminCookie, language: "en")
            XCTAssertFalse(plain.contains("Fax modem") || plain.contains("page-stats") || plain.contains("Why it failed"), plain)

            let jobPage = try await Self.get(client, "/admin/jobs/\(jobID)", cookie: f.adminCookie, language: "en")
            XCTAssertTrue(jobPage.contains("<th>Modem on the next try</th><td>at most 4800 bit/s, ECM off</td>"), jobPage)
            XCTAssertTrue(jobPage.contains(Self.html("The remote fax did not accept our signal — training failed at 9600 bit/s")), jobPage)
            XCTAssertTrue(jobPage.contains("<th>Error correction (ECM)</th><td>no</td>"), jobPage)
            let jobDE = try await Self.get(client, "/admin/jobs/\(jobID)", cookie: f.adminCookie, language: "de")
            XCTAssertTrue(jobDE.contains("<td>höchstens 4800 bit/s, ECM aus</td>"), jobDE)

            // The user's pages: the sentence without the engine's words.
            let inbox = try await Self.get(client, "/inbox/\(callID)", cookie: f.userCookie, language: "en")
            XCTAssertTrue(inbox.contains("<th>Why it failed</th><td>" + Self.html("A page arrived too damaged and was refused — poor transmission at 9600 bit/s") + "</td>"), inbox)
            XCTAssertFalse(inbox.contains("ECM page not accepted"), "the engine's words are for the admin")
            XCTAssertTrue(inbox.contains("id=\"page-stats\""), inbox)
            let sent = try await Self.get(client, "/sent/\(jobID)", cookie: f.userCookie, language: "de")
            XCTAssertTrue(sent.contains("Das Gegenfax hat unser Signal nicht angenommen — Training bei 9600 bit/s fehlgeschlagen"), sent)
            XCTAssertTrue(sent.contains("<th>Kompression</th><td>MR (T.4 2D)</td>"), sent)
        }
    }

    /// `faxgate show` (JournalTable.details) and the journal's REASON column: the same facts for the admin's shell.
    func testJournalShow_listsEngineFactsFailureAndPages() {
        var call = CallRecord(state: .mailed, callingNumber: "301234567", calledNumber: "100", extensionName: "Empfang")
        call.engine = .software; call.compression = .mr; call.ecm = false; call.ecmRetransmittedFrames = 0
        call.t30Failure = T30Failure(kind: .trainingFailed, code: 7, text: "Training failed\u{1B}[2J", bitRate: 4800)
        call.pageStatistics = [FaxPageStatistics(page: 1, bitRate: 4800, compression: .mr, fine: false, ecm: false, badRows: 3)]
        let lines = JournalTable.details(call, numbers: PartyNumberFormat(line: LineConfig()))
        XCTAssertTrue(lines.contains("engine:       software"), "\(lines)")
        XCTAssertTrue(lines.contains("compression:  mr"), "\(lines)")
        XCTAssertTrue(lines.contains("ecm resent:   0 frame(s)"), "\(lines)")
        let failure = lines.first { $0.hasPrefix("t30 failure:") } ?? ""
        XCTAssertTrue(failure.contains("training_failed: The sending fax could not get through — training failed at 4800 bit/s (code 7: Training failed"), failure)
        XCTAssertFalse(failure.contains("\u{1B}"), "no terminal escapes from stored text")
        XCTAssertTrue(lines.contains("page 1:       4800 bit/s, mr, normal, no ECM, 3 bad rows"), "\(lines)")
        let table = JournalTable.render([call])
        XCTAssertTrue(table.contains("The sending fax could not get through — training failed at 4800 bit/s"), table)
        // A call without engine facts: dashes, no page lines.
        let plain = JournalTable.details(CallRecord(state: .mailed, callingNumber: nil, calledNumber: "100"), numbers: PartyNumberFormat(line: LineConfig()))
        XCTAssertTrue(plain.contains("t30 failure:  -") && !plain.contains { $0.hasPrefix("page ") }, "\(plain)")
    }
}
