import CapiProtocol
import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `faxgate serve` with `capi.driver: fritzbox` against the simulator speaking AVM's CAPI over TCP with the
/// profile a FRITZ!Box reports (no T.30: transparent B-channels only), `fax_engine: auto`. The fax modem runs in
/// the gateway (spandsp), the remote fax machine is the simulator's own spandsp engine on the audio line.
final class FritzboxEndToEndTests: XCTestCase {
    static func fritzboxOptions(mailToFax: Bool = false) -> GatewayHarness.Options {
        var o = GatewayHarness.Options(mailToFax: mailToFax)
        o.capiWire = .fritzbox
        o.capi = "fax_engine: auto"
        return o
    }

    /// Whether nothing listens on 127.0.0.1:`port` right now.
    static func loopbackPortIsFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    func testFaxIn_overTheFritzboxDriver_arrivesAsTheSamePDF() async throws {
        // With no capi.port the fritzbox driver must go to AVM's port 5031 (libcapi20 itself would use 2662).
        // Only when 5031 is taken on this machine does the test name the simulator's port instead.
        var options = Self.fritzboxOptions()
        let defaultPortFree = Self.loopbackPortIsFree(5031)
        options.simulatorPort = defaultPortFree ? 5031 : 0
        options.capiPortInConfig = !defaultPortFree
        if !defaultPortFree { print("127.0.0.1:5031 is taken: capi.port is written, the 5031 default is not exercised") }
        let h = try GatewayHarness(options)
        defer { h.shutdown() }
        XCTAssertEqual(h.simulator.controllerProfile, .transparent)
        XCTAssertFalse(h.simulator.profile.supportsT30)
        let work = try TemporaryDirectory("e2e-fritzbox-in")
        // Two pages of the usual test document, made by Ghostscript's cfax device, sent as audio by spandsp.
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        let pages = Array(try SFFReader.read(source.sff).pages.prefix(2))
        XCTAssertEqual(pages.count, 2)
        try await h.startGateway()
        if defaultPortFree {
            XCTAssertEqual(h.simulator.port, 5031)
            XCTAssertFalse(try String(contentsOfFile: h.configPath, encoding: .utf8).contains("port: 5031"), "no capi.port in the config")
        }
        XCTAssertTrue(h.gatewayLog().contains("fritzbox"), "the log names the driver")

        let result = try await h.simulator.placeSoftFaxCall(SimulatedSoftFaxCall(
            from: "+49301112223", to: "100", pages: pages, remote: SoftFaxRemote(ident: "+49 30 1112223")))
        XCTAssertTrue(result.accepted, "\(result)")
        XCTAssertNil(result.problem, result.problem ?? "")
        XCTAssertEqual(result.bProtocol.map { [$0.b1, $0.b2, $0.b3] }, [1, 1, 0], "transparent B-channel, not firmware fax")
        let sent = try XCTUnwrap(result.engineResult, "the simulator's fax machine finished")
        XCTAssertTrue(sent.succeeded, "\(sent)")
        XCTAssertEqual(sent.pages, 2)
        XCTAssertEqual(result.session?.violations ?? ["no session"], [])

        let mails = try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30)
        let mail = try ParsedMail(mails[0], in: work)
        XCTAssertEqual(mail.headers["Subject"], "Fax von +49301112223 an Empfang (2 Seiten)")
        XCTAssertTrue(mail.body.contains("+49 30 1112223"), mail.body)
        XCTAssertTrue(mail.body.contains("fein (204 × 196 dpi)"), mail.body)

        // The PDF, rasterized by pdftoppm at the fax grid, against Ghostscript's rendering of the source — as
        // FaxReceptionEndToEndTests checks the firmware-fax path — and against the pages the machine sent.
        let pdf = try XCTUnwrap(mail.attachments.first { $0.contentType == "application/pdf" })
        XCTAssertEqual(try pdfPageCount(pdf.path), 2)
        let ours = work.path + "/ours"
        try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: true)
        let scale = 595.27559055 / (1728.0 / 204 * 72)
        try runTool("pdftoppm", ["-mono", "-rx", String(format: "%.4f", 204 / scale), "-ry", String(format: "%.4f", 196 / scale),
                                 pdf.path, ours + "/p"])
        let rendered = try pbmFiles(in: URL(fileURLWithPath: ours))
        let reference = Array(try ghostscriptPBM(faxTestPostScript, resolution: "204x196", in: work).prefix(2))
        XCTAssertEqual(rendered.count, 2)
        for (page, (a, b)) in zip(rendered, reference).enumerated() {
            let diff = compareImages(a, b)
            print("fritzbox fax in, page \(page + 1) vs Ghostscript: \(diff); vs sent: \(compareImages(a, BilevelImage(pages[page])))")
            XCTAssertLessThan(diff.fraction, 0.01, "page \(page + 1): \(diff)")
            XCTAssertEqual(compareImages(a, BilevelImage(pages[page])).differing, 0, "page \(page + 1) is pixel for pixel the page sent")
            XCTAssertGreaterThan(b.blackPixels, 1000, "reference page \(page + 1) is blank: the comparison would prove nothing")
        }

        let calls = try await h.waitForJournal { $0.first?.state == .mailed }
        XCTAssertEqual(calls.count, 1)
        XCTAssertEqual(calls[0].outcome, .complete)
        XCTAssertEqual(calls[0].pages, 2)
        XCTAssertEqual(calls[0].remoteStationID, "+49 30 1112223")
        XCTAssertEqual(calls[0].engine, .software, "auto chose the software modem: the profile has no T.30")
        XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
    }

    func testMailToFax_overTheFritzboxDriver_reachesTheRemoteMachinePixelForPixel() async throws {
        let h = try GatewayHarness(Self.fritzboxOptions(mailToFax: true))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("e2e-fritzbox-out")
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        let received = work.path + "/received"
        try FileManager.default.createDirectory(atPath: received, withIntermediateDirectories: true)
        h.simulator.setOutgoingBehaviour(for: "0301234567", [.answerSoftFax(SoftFaxAnswer(ident: "+49 30 1234567", saveDirectory: received))])
        try await h.startGateway()

        // The mail as MailToFaxEndToEndTests builds it (Tests/Scripts/make_mail.py).
        let spec: [String: Any] = ["from": "Alice <alice@example.test>", "to": ["0301234567@fax.example.test"], "subject": "Befund",
                                   "headers": [String: String](), "attachments": [["path": pdf, "type": "application/pdf", "filename": "Befund.pdf"]]]
        let specPath = work.path + "/spec.json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, specPath, specPath + ".eml"])
        try h.submit([UInt8](try Data(contentsOf: URL(fileURLWithPath: specPath + ".eml"))))
        let jobs = try await h.waitForQueue(timeout: 60) { $0.first?.state.isFinal == true }
        let job = jobs[0]
        XCTAssertEqual(job.state, .done, "\(job)\n\(h.gatewayLog())")
        XCTAssertEqual(job.pagesSent, 2)
        XCTAssertEqual(job.remoteStationID, "+49 30 1234567")
        XCTAssertEqual(job.engine, .software)

        // The line: B 1/1/0 on the box's transparent channel, the simulator's spandsp receiver got both pages.
        let call = try XCTUnwrap(h.simulator.outgoingCalls.first)
        XCTAssertEqual(call.bProtocol.map { [$0.b1, $0.b2, $0.b3] }, [1, 1, 0])
        XCTAssertTrue(call.violations.isEmpty, "\(call.violations)")
        let session = try XCTUnwrap(call.softFax)
        XCTAssertEqual(session.result?.succeeded, true, "\(String(describing: session.result))")
        XCTAssertEqual(session.pages.count, 2)

        // The received TIFF, split by libtiff's tiffsplit and decoded by netpbm's tifftopnm, against Ghostscript's
        // own rendering of the mailed PDF (centred as in MailToFaxEndToEndTests).
        let tiff = try XCTUnwrap(session.tiffPath)
        let out = work.url.appendingPathComponent("rx")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try runTool(faxTool("tiffsplit"), [tiff, out.path + "/page-"])
        for name in try FileManager.default.contentsOfDirectory(atPath: out.path).filter({ $0.hasSuffix(".tif") }) {
            let pbm = try runTool(faxTool("tifftopnm"), [out.appendingPathComponent(name).path]).stdout
            try pbm.write(to: out.appendingPathComponent(name.replacingOccurrences(of: ".tif", with: ".pbm")))
        }
        let pages = try pbmFiles(in: out)
        XCTAssertEqual(pages.count, 2)
        let gsOut = work.url.appendingPathComponent("gs")
        try FileManager.default.createDirectory(at: gsOut, withIntermediateDirectories: true)
        try runTool("gs", ["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw", "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA",
                           "-dFitPage", "-sOutputFile=\(gsOut.path)/p-%03d.pbm", pdf])
        let reference = try pbmFiles(in: gsOut)
        XCTAssertEqual(reference.count, 2)
        for (i, ref) in reference.enumerated() where i < pages.count {
            let page = pages[i]
            XCTAssertEqual(page.width, 1728)
            // What libtiff and netpbm read is what the simulator's spandsp decoded.
            XCTAssertEqual(compareImages(page, BilevelImage(session.pages[i])).differing, 0, "page \(i + 1)")
            // The gateway's modem prints the header line (station id, headline) in rows of its own above the
            // page, as a fax machine does; below them lies the page as rendered.
            let header = page.height - ref.height
            XCTAssertTrue((1...40).contains(header), "page \(i + 1): \(header) rows above the A4 page")
            guard (1...40).contains(header) else { continue }
            let headerBand = BilevelImage(width: page.width, height: header, bitmap: Array(page.bitmap.prefix(header * page.rowBytes)))
            XCTAssertGreaterThan(headerBand.blackPixels, 500, "page \(i + 1): the header line is printed")
            let body = BilevelImage(width: page.width, height: ref.height, bitmap: Array(page.bitmap.dropFirst(header * page.rowBytes)))
            let diff = compareImages(MailToFaxEndToEndTests.crop(body, x0: (1728 - ref.width) / 2, width: ref.width), ref)
            print("fritzbox mail to fax, page \(i + 1) below the \(header)-row header vs Ghostscript: \(diff)")
            XCTAssertLessThan(diff.fraction, 0.01, "page \(i + 1): \(diff)")
            XCTAssertGreaterThan(ref.blackPixels, 1000)
        }
        XCTAssertEqual(h.stopGateway(), 0, h.gatewayLog())
    }
}
