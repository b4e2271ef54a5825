import CapiProtocol
import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import SoftFax
import TestSupport
import XCTest

/// Software fax mode end to end: `faxgate serve` talks to the simulator through Debian's libcapi20 (rcapi
/// module); the simulator reports a controller without T.30 firmware, so with `fax_engine: auto` the gateway
/// connects transparent B-channels (1/1/0) and runs its own spandsp modem against the simulator's spandsp fax
/// machine, over bit-reversed A-law in DATA_B3 blocks. The line runs in lockstep (as fast as the gateway keeps
/// up, never ahead of its audio), so a two-page fax takes seconds, not a minute, without starving either modem.
/// Pages are compared pixel by pixel against what was sent, decoded by tools nobody here wrote.
final class SoftFaxEndToEndTests: XCTestCase {
    /// Two fine A4 pages of text and boxes (the shared test PostScript's first two), as Ghostscript's cfax
    /// device writes them, and the pages as the simulator's fax machine sends them.
    static func twoPages(in dir: TemporaryDirectory) throws -> (sff: String, pages: [FaxPage]) {
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: dir, fine: true)
        let sff = dir.path + "/two.sff"
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=cfax", "-r204x196", "-sPAPERSIZE=a4", "-dFirstPage=1",
                           "-dLastPage=2", "-sOutputFile=\(sff)", source.pdf])
        let pages = try SFFReader.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: sff)))).pages
        XCTAssertEqual(pages.count, 2)
        return (sff, pages)
    }

    /// pdftoppm's rendering of a PDF drawn at the fax's exact size (pdf_page_size: exact), 1 PDF pixel per fax dot.
    static func pdftoppmPages(_ pdf: String, fine: Bool, in dir: TemporaryDirectory, label: String) throws -> [BilevelImage] {
        let out = dir.path + "/pdftoppm-\(label)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try runTool("pdftoppm", ["-mono", "-rx", "204", "-ry", fine ? "196" : "98", pdf, out + "/p"])
        return try pbmFiles(in: URL(fileURLWithPath: out))
    }

    /// Same size and not one pixel different, and not blank (a blank page would match a blank page).
    func assertPixelIdentical(_ got: [BilevelImage], _ expected: [BilevelImage], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, "\(what): page count", file: file, line: line)
        for (i, (a, b)) in zip(got, expected).enumerated() {
            XCTAssertEqual(a.width, b.width, "\(what) page \(i + 1): width", file: file, line: line)
            XCTAssertEqual(a.height, b.height, "\(what) page \(i + 1): height", file: file, line: line)
            XCTAssertEqual(compareImages(a, b).differing, 0, "\(what) page \(i + 1): \(compareImages(a, b))", file: file, line: line)
            XCTAssertGreaterThan(b.blackPixels, 1000, "\(what) page \(i + 1): reference is blank", file: file, line: line)
        }
    }

    /// On failure, the gateway's side and the last CAPI messages, for whoever reads the report.
    func explain(_ h: GatewayHarness, _ body: () async throws -> Void) async throws {
        do { try await body() } catch {
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(4000)))
            print("--- last CAPI messages:\n" + h.simulator.messages.suffix(30).map(\.description).joined(separator: "\n"))
            throw error
        }
    }

    static func transparentOptions() -> GatewayHarness.Options {
        var o = GatewayHarness.Options()
        o.controllerProfile = .transparent
        o.pdfPageSize = "exact"
        o.capi = "fax_engine: auto"
        return o
    }

    // MARK: (a) fax in

    func testFaxIn_softwareEngine_arrivesAsTheSamePDFMail_pixelIdentical_journalSaysSoftware() async throws {
        var o = Self.transparentOptions()
        o.formats = ["pdf", "tiff"]
        let h = try GatewayHarness(o)
        defer { h.shutdown() }
        let work = try TemporaryDirectory("softfax-in")
        let (sff, pages) = try Self.twoPages(in: work)
        try await h.startGateway()
        try await explain(h) {
            let result = try await h.simulator.placeSoftFaxCall(SimulatedSoftFaxCall(
                from: "+49301112223", to: "100", pages: pages, remote: SoftFaxRemote(ident: "+49 30 1112223")))
            XCTAssertTrue(result.accepted, "\(result)")
            XCTAssertNil(result.problem, "\(result)")
            // The gateway answered with a transparent channel, not with the T.30 firmware this controller lacks.
            XCTAssertEqual(result.bProtocol.map { [$0.b1, $0.b2, $0.b3] }, [1, 1, 0])
            XCTAssertEqual(result.engineResult?.kind, .success, "\(String(describing: result.engineResult))")
            XCTAssertEqual(result.pagesSent, 2)
            XCTAssertEqual(result.session?.violations ?? ["no session"], [])

            let mail = try ParsedMail(try XCTUnwrap(h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30).first), in: work)
            XCTAssertEqual(mail.headers["Subject"], "Fax von +49301112223 an Empfang (2 Seiten)")
            XCTAssertTrue(mail.body.contains("+49 30 1112223"), mail.body)
            XCTAssertTrue(mail.body.contains("fein (204 × 196 dpi)"), mail.body)
            let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
            assertPixelIdentical(try Self.pdftoppmPages(pdf.path, fine: true, in: work, label: "in"), pages.map(BilevelImage.init), "received PDF")
            // The TIFF attachment against sfftobmp's TIFF of the sent SFF, compared by libtiff's tiffcmp (exit 0 = same
            // dimensions, sample layout and scanlines on every page).
            let tiff = try XCTUnwrap(mail.attachments.first { $0.filename.hasSuffix(".tif") })
            try runTool("sfftobmp", ["-q", "-r", "-t4", sff, "-o", work.path + "/sent.tif"])
            let cmp = try runTool("tiffcmp", [work.path + "/sent.tif", tiff.path], check: false)
            XCTAssertEqual(cmp.status, 0, "tiffcmp: \(cmp.stdoutText) \(cmp.stderrText)")

            let calls = try await h.waitForJournal { $0.first?.state == .mailed }
            let call = try XCTUnwrap(calls.first)
            XCTAssertEqual(call.engine, .software)
            XCTAssertEqual(call.outcome, .complete)
            XCTAssertEqual(call.pages, 2)
            XCTAssertEqual(call.bitRate, 14400)
            XCTAssertEqual(call.ecm, true)
            XCTAssertNotNil(call.compression)
            XCTAssertNil(call.t30Failure)
            XCTAssertEqual(call.remoteStationID, "+49 30 1112223")
            XCTAssertEqual(h.stopGateway(), 0)
        }
    }

    // MARK: (b) mail → fax

    func testMailToFax_softwareEngine_reachesTheSimulatorsReceiver_pixelIdentical() async throws {
        var o = Self.transparentOptions()
        o.mailToFax = true
        let h = try GatewayHarness(o)
        defer { h.shutdown() }
        let work = try TemporaryDirectory("softfax-out")
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        h.simulator.setOutgoingBehaviour(for: "0301234567", [.answerSoftFax(SoftFaxAnswer(ident: "+49 30 1234567", saveDirectory: work.path))])
        try await h.startGateway()
        try await explain(h) {
            try h.submit(try Self.mail(h, to: "0301234567@fax.example.test", subject: "Befund", pdf: pdf))
            let jobs = try await h.waitForQueue(timeout: 60) { $0.first?.state.isFinal == true }
            let job = try XCTUnwrap(jobs.first)
            XCTAssertEqual(job.state, .done, "\(job)")
            XCTAssertEqual(job.pages, 2)
            XCTAssertEqual(job.pagesSent, 2)
            XCTAssertEqual(job.engine, .software)
            XCTAssertEqual(job.bitRate, 14400)
            XCTAssertEqual(job.ecm, true)
            XCTAssertNil(job.t30Failure)
            XCTAssertEqual(job.remoteStationID, "+49 30 1234567")

            let call = try XCTUnwrap(h.simulator.outgoingCalls.first)
            XCTAssertEqual(call.bProtocol.map { [$0.b1, $0.b2, $0.b3] }, [1, 1, 0])
            XCTAssertEqual(call.violations, [])
            let session = try XCTUnwrap(call.softFax, "the simulator's fax machine never ran")
            XCTAssertEqual(session.result?.kind, .success, "\(String(describing: session.result))")
            XCTAssertEqual(session.pages.count, 2)

            // Reference: the document the gateway rendered and spooled for this job, decoded by sfftobmp.
            let spooled = try sfftobmpPages([UInt8](try Data(contentsOf: URL(fileURLWithPath: job.sffPath))), keepResolution: true,
                                            in: work, label: "job")
            let received = session.pages.map(BilevelImage.init)
            // The sending modem adds the extension's headline as rows above the page (spandsp's page header, what a
            // controller prints too); below them every row must be the spooled page's, pixel for pixel.
            XCTAssertEqual(received.count, spooled.count)
            for (i, (r, s)) in zip(received, spooled).enumerated() {
                print("page \(i + 1): received \(r.width)×\(r.height), spooled \(s.width)×\(s.height)")
                XCTAssertEqual(r.width, s.width, "page \(i + 1)")
                let added = r.height - s.height
                XCTAssertTrue((1...64).contains(added), "page \(i + 1): \(added) header rows")
                guard (1...64).contains(added) else { continue }
                XCTAssertGreaterThan(Self.rows(r, from: 0, count: added).blackPixels, 100, "page \(i + 1): the header line is empty")
                let diff = compareImages(Self.rows(r, from: added, count: s.height), s)
                XCTAssertEqual(diff.differing, 0, "page \(i + 1) below the header line: \(diff)")
                XCTAssertGreaterThan(s.blackPixels, 1000)
            }
            // And the spooled document is the mail's PDF (Ghostscript's own rendering, within rasterizer noise).
            let gsOut = work.url.appendingPathComponent("gs")
            try FileManager.default.createDirectory(at: gsOut, withIntermediateDirectories: true)
            try runTool("gs", ["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw", "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA",
                               "-dFitPage", "-sOutputFile=\(gsOut.path)/p-%03d.pbm", pdf])
            for (i, ref) in try pbmFiles(in: gsOut).enumerated() {
                let cropped = MailToFaxEndToEndTests.crop(spooled[i], x0: (1728 - ref.width) / 2, width: ref.width)
                XCTAssertLessThan(compareImages(cropped, ref).fraction, 0.01, "page \(i + 1)")
            }
        }
    }

    /// A mail from the allowed sender with one PDF attachment, built by Python's email package (Tests/Scripts/make_mail.py).
    static func mail(_ h: GatewayHarness, to: String, subject: String, pdf: String) throws -> [UInt8] {
        let spec: [String: Any] = ["from": "Alice <alice@example.test>", "to": [to], "subject": subject, "headers": [String: String](),
                                   "attachments": [["path": pdf, "type": "application/pdf", "filename": "Befund.pdf"]]]
        let specPath = h.dir.path + "/spec-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, specPath, specPath + ".eml"])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: specPath + ".eml")))
    }

    /// Rows `y0 ..< y0 + count` of an image.
    static func rows(_ image: BilevelImage, from y0: Int, count: Int) -> BilevelImage {
        let start = min(max(0, y0), image.height), end = min(image.height, start + max(0, count))
        return BilevelImage(width: image.width, height: end - start,
                            bitmap: Array(image.bitmap[(start * image.rowBytes)..<(end * image.rowBytes)]))
    }

    // MARK: (c) voice call from a fax machine

    func testVoiceCallFromAFaxMachine_withoutFacilityX_switchesToTheSoftwareFax_andThePagesArrive() async throws {
        var o = Self.transparentOptions()
        // A long limit so only the fax tone can end the voicemail.
        o.voicemail = "max_seconds: 60\nsilence_seconds: 30"
        let h = try GatewayHarness(o)
        defer { h.shutdown() }
        let work = try TemporaryDirectory("softfax-voice")
        let pages = try Self.twoPages(in: work).pages
        try await h.startGateway()
        try await explain(h) {
            let result = try await h.simulator.placeSoftFaxCall(.voiceCall(from: "+49305556667", to: "100", pages: pages))
            XCTAssertTrue(result.accepted, "\(result)")
            XCTAssertEqual(result.bProtocol.map { [$0.b1, $0.b2, $0.b3] }, [1, 1, 0], "voice answers transparent")
            let session = try XCTUnwrap(result.session)
            // The tone was the simulator's audio, never a FACILITY 'X': the gateway heard CNG itself.
            XCTAssertEqual(session.result?.kind, .success, "\(String(describing: session.result))")
            XCTAssertEqual(result.pagesSent, 2)
            XCTAssertFalse(session.gatewayAudio.isEmpty, "the greeting was played before the switch")
            let facilities = h.simulator.messages.filter { $0.direction == .toGateway && $0.message?.command == .facility && $0.message?.subcommand == .ind }
            XCTAssertEqual(facilities.count, 0, "the simulator must not report the tone: \(facilities)")

            let mail = try ParsedMail(try XCTUnwrap(h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30).first), in: work)
            XCTAssertEqual(mail.headers["Subject"], "Fax von +49305556667 an Empfang (2 Seiten)")
            let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
            assertPixelIdentical(try Self.pdftoppmPages(pdf.path, fine: true, in: work, label: "voice"), pages.map(BilevelImage.init), "fax after voice")
            XCTAssertFalse(mail.attachments.contains { $0.contentType.hasPrefix("audio/") }, "a fax, not a voicemail")

            let calls = try await h.waitForJournal { $0.first?.state == .mailed }
            XCTAssertEqual(calls.count, 1)
            XCTAssertEqual(calls.first?.kind, .fax)
            XCTAssertEqual(calls.first?.engine, .software)
            XCTAssertEqual(calls.first?.pages, 2)
        }
    }

    // MARK: (d) a controller that does T.30

    func testControllerWithT30Firmware_andEngineAuto_stillUsesBProtocol444() async throws {
        var o = GatewayHarness.Options()
        o.controllerProfile = .faxAndVoice
        o.capi = "fax_engine: auto"
        let h = try GatewayHarness(o)
        defer { h.shutdown() }
        let work = try TemporaryDirectory("softfax-firmware")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        try await h.startGateway()
        try await explain(h) {
            let result = try await h.simulator.placeFaxCall(SimulatedFaxCall(
                from: "+49301112223", to: "100", document: source.sff, rate: 14400, fine: true, remoteStationID: "+49 30 1112223"))
            XCTAssertTrue(result.accepted, "\(result)")
            XCTAssertEqual(result.bProtocol.map { [$0.b1, $0.b2, $0.b3] }, [4, 4, 4])
            XCTAssertEqual(result.bytesSent, source.sff.count)
            let calls = try await h.waitForJournal { $0.first?.state == .mailed }
            XCTAssertEqual(calls.first?.pages, 3)
            XCTAssertEqual(calls.first?.engine, .controller)
        }
    }
}
