import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Issue 11: the same gateway on PostgreSQL. A representative set of the end-to-end suites runs unchanged with
/// `storage.driver: postgres` (a fresh database per harness in the test run's real cluster, reached as production
/// does: the password role over TLS with verify-full), chosen for the storage paths they cross per second:
/// fax in → PDF mail (calls, events, documents, outbox), mail → fax with its report (intake ledger, jobs, claims,
/// reports), voicemail (recordings, voice rows), journal and show through the CLI, a kill right after the IMAP
/// MOVE and right after the SMTP server's 250 (what was committed must carry the restart), and the web login with
/// the inbox and its stored PDF (users, sessions, audit, search, read marks).
///
/// The suites' own tests run as they are (their assertions are the proof); each run then checks that the rows
/// really went into PostgreSQL and that no SQLite file appeared in the spool, so a silently ignored `storage:`
/// cannot pass.
final class PostgresEndToEndTests: XCTestCase {
    /// Runs `body` with every harness it makes on PostgreSQL; returns what those harnesses stored.
    private func onPostgres(_ body: () async throws -> Void) async throws -> GatewayHarness.StorageObservation {
        _ = try PostgresServer.shared()  // a cluster that cannot start fails here, not as a confusing suite failure
        let observation = GatewayHarness.StorageObservation()
        try await GatewayHarness.$storageObservation.withValue(observation) {
            try await GatewayHarness.$defaultStorage.withValue(.postgres) {
                try await body()
            }
        }
        XCTAssertGreaterThan(observation.harnesses, 0, "the suite made no harness on PostgreSQL")
        XCTAssertEqual(observation.sqliteFiles, [], "driver postgres, yet a SQLite file in the spool")
        return observation
    }

    /// An instance of another suite to run one of its tests; its XCTAssert failures are recorded against the
    /// currently running test (this one).
    private func suite<T: XCTestCase>(_ type: T.Type) -> T {
        T(name: "\(T.self) on PostgreSQL", testClosure: { _ in })
    }

    func testFaxIn_PDFMail_onPostgres() async throws {
        let seen = try await onPostgres {
            try await suite(FaxReceptionEndToEndTests.self).testFaxCall_arrivesAsPDFInTheExtensionsMailbox_overSTARTTLS()
        }
        XCTAssertGreaterThan(seen.rows(containing: "call"), 0, "\(seen.rows)")
    }

    func testMailToFax_withSendReport_onPostgres() async throws {
        let seen = try await onPostgres {
            try await suite(MailToFaxEndToEndTests.self).testMailWithPDFJPEGAndText_isFaxed_andTheSenderGetsTheSendReport()
        }
        XCTAssertGreaterThan(seen.rows(containing: "job"), 0, "\(seen.rows)")
        XCTAssertGreaterThan(seen.rows(containing: "intake"), 0, "\(seen.rows)")
    }

    func testVoicemail_onPostgres() async throws {
        let seen = try await onPostgres {
            try await suite(VoicemailEndToEndTests.self).testVoicemail_recordingMailed_greetingPlayed_endings_andFaxToneSwitch()
        }
        XCTAssertGreaterThan(seen.rows(containing: "call"), 0, "\(seen.rows)")
    }

    /// `faxgate journal` (table and --json) and `faxgate show` against PostgreSQL.
    func testCallerNumber_journalAndShow_onPostgres() async throws {
        _ = try await onPostgres {
            try await suite(CallerNumberEndToEndTests.self).testNationalCallerNumber_isMailedInE164AndNationalForm_andListedSoInJournalAndShow()
        }
    }

    func testPowerLoss_killedAfterIMAPMove_andAfterSMTP250_onPostgres() async throws {
        let seen = try await onPostgres {
            let tests = suite(PowerLossTests.self)
            try await tests.testKilledRightAfterIMAPMove_theOrderBecomesExactlyOneJob_dialledOnce_reportedOnce()
            try await tests.testKilledRightAfterSMTP250_forAReceivedFax_itIsMailedExactlyOnce()
        }
        XCTAssertEqual(seen.harnesses, 2)
    }

    /// A user made by the CLI logs in over HTTP (a wrong password first), finds the received fax in /inbox and
    /// downloads the PDF the database holds: the bytes the mail carried. Sessions, the failed attempt and the
    /// login are rows in PostgreSQL; the journal and the audit trail read back through the CLI.
    func testWebLogin_inboxDocument_journalAndAudit_onPostgres() async throws {
        let seen = try await onPostgres {
            let work = try TemporaryDirectory("pg-web")
            let h = try GatewayHarness(.init(language: "en"))
            defer { h.shutdown() }
            XCTAssertEqual(h.options.storage, .postgres)
            try await h.startGateway()
            let deadline = Date().addingTimeInterval(30)
            while await BrowserEndToEndTests.get(h.webURL + "/login") == nil {
                guard Date() < deadline else { throw ToolError(description: "faxgate serve does not answer on \(h.webURL)") }
                try await Task.sleep(for: .milliseconds(200))
            }
            let add = Process()
            add.executableURL = URL(fileURLWithPath: GatewayHarness.faxgateBinary)
            add.arguments = ["user", "add", "--extension", "Empfang", "--password-stdin", "anna", "-c", h.configPath]
            let input = Pipe()
            add.standardInput = input
            add.standardOutput = FileHandle.nullDevice
            try add.run()
            input.fileHandleForWriting.write(Data("anna-password-1234\n".utf8))
            try input.fileHandleForWriting.close()
            add.waitUntilExit()
            XCTAssertEqual(add.terminationStatus, 0, "faxgate user add")

            let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: false)
            let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
            XCTAssertTrue(result.accepted)
            let mail = try ParsedMail(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 60)[0], in: work)
            let mailed = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
            let calls = try await h.waitForJournal { $0.first?.state == .mailed }
            let id = try XCTUnwrap(calls.first?.id)
            XCTAssertEqual(calls.count, 1)
            XCTAssertEqual(calls.first?.pages, 3)
            let show = try runTool(GatewayHarness.faxgateBinary, ["show", "\(id)", "-c", h.configPath]).stdoutText
            XCTAssertTrue(show.contains("Empfang"), show)

            var anna = WebUserEndToEndTests.Client(base: h.webURL, jar: work.path + "/jar", work: work.path)
            let form = try anna.request("/login")
            let pre = try XCTUnwrap(WebUserEndToEndTests.Client.csrf(in: form.text))
            let wrong = try anna.request("/login", method: "POST", form: [("name", "anna"), ("password", "not-her-password"), ("csrf", pre)])
            XCTAssertNotEqual(wrong.status, 303, "a wrong password logs in")
            try anna.login("anna", "anna-password-1234")
            let inbox = try anna.request("/inbox")
            XCTAssertEqual(inbox.status, 200)
            XCTAssertTrue(inbox.text.contains("/inbox/\(id)"), String(inbox.text.prefix(3000)))
            let pdf = try anna.request("/inbox/\(id)/document.pdf")
            XCTAssertEqual(pdf.status, 200)
            XCTAssertEqual(pdf.body, [UInt8](try Data(contentsOf: URL(fileURLWithPath: mailed.path))), "the stored PDF is the mailed one")

            let audit = try runTool(GatewayHarness.faxgateBinary, ["audit", "--json", "-l", "50", "-c", h.configPath]).stdoutText
            XCTAssertTrue(audit.contains("login.failed"), audit)
            XCTAssertTrue(audit.contains("login.password"), audit)
            XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
        }
        XCTAssertGreaterThan(seen.rows(containing: "user"), 0, "\(seen.rows)")
        XCTAssertGreaterThan(seen.rows(containing: "audit"), 0, "\(seen.rows)")
        XCTAssertGreaterThan(seen.rows(containing: "session"), 0, "anna's session is a row in PostgreSQL: \(seen.rows)")
    }
}
