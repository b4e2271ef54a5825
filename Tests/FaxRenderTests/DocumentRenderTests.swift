import FaxDocument
import Foundation
import TestSupport
import XCTest

@testable import FaxRender

final class DocumentRenderTests: XCTestCase {
    func testThreePagePDFMatchesGhostscriptAndSurvivesSFF() async throws {
        let dir = try TemporaryDirectory("render-pdf")
        let pdf = try makeFile(threePagePostScript, device: "pdfwrite", name: "three.pdf", in: dir)
        let pages = try await FaxRenderer.render(.pdf(try bytes(pdf)), options: RenderOptions())
        XCTAssertEqual(pages.count, 3)
        for page in pages {
            XCTAssertEqual(page.width, 1728)
            XCTAssertEqual(page.height, 2292)
            XCTAssertEqual(page.resolution, .fine)
            XCTAssertGreaterThan(page.height, page.width)
        }
        // Landscape page 2 is turned a quarter counterclockwise: its top-left box ends up bottom-left,
        // its top bar becomes a bar along the left edge.
        let landscape = pages[1]
        XCTAssertGreaterThan(blackFraction(landscape, x: 0.07...0.15, y: 0.86...0.95), 0.95, "box bottom-left")
        XCTAssertEqual(blackFraction(landscape, x: 0.04...0.15, y: 0.03...0.12), 0, "nothing top-left")
        XCTAssertGreaterThan(blackFraction(landscape, x: 0.014...0.026, y: 0.02...0.98), 0.95, "top bar now on the left")
        // A4 is 1686 pixels wide at 204 dpi: centred on the 1728-pixel line, 21 white pixels each side.
        for page in pages {
            XCTAssertEqual(blackFraction(page, x: 0...(20.0 / 1728), y: 0...1), 0)
            XCTAssertEqual(blackFraction(page, x: (1708.0 / 1728)...1, y: 0...1), 0)
        }

        // Ghostscript's own rendering at A4 media, fitted the same way.
        let gsOut = dir.url.appendingPathComponent("gs")
        try FileManager.default.createDirectory(at: gsOut, withIntermediateDirectories: true)
        try runTool(faxTool("gs"), ["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw", "-r204x196", "-sPAPERSIZE=a4",
                                    "-dFIXEDMEDIA", "-dFitPage", "-sOutputFile=\(gsOut.path)/p-%03d.pbm", pdf.path])
        let reference = try pbmFiles(in: gsOut)
        XCTAssertEqual(reference.count, 3)
        for (index, (page, gsPage)) in zip(pages, reference).enumerated() {
            XCTAssertEqual(gsPage.width, 1686)
            let difference = compareImages(crop(page, x0: 21, width: gsPage.width), gsPage)
            print("page \(index + 1) vs gs -dFitPage: \(difference); black pixels ours \(BilevelImage(page).blackPixels), gs \(gsPage.blackPixels)")
            XCTAssertLessThan(difference.fraction, 0.005, "page \(index + 1): \(difference)")
        }

        // SFF written from our pages decodes in sfftobmp to exactly our pages.
        let decoded = try sfftobmpPages(SFFWriter.write(pages), keepResolution: true, in: dir, label: "ours")
        XCTAssertEqual(decoded.count, 3)
        for (page, image) in zip(pages, decoded) {
            XCTAssertEqual(compareImages(BilevelImage(page), image).differing, 0)
        }
    }

    func testNormalResolutionHalvesPageHeight() async throws {
        let dir = try TemporaryDirectory("render-normal")
        let pdf = try bytes(try makeFile(threePagePostScript, device: "pdfwrite", name: "three.pdf", in: dir))
        let fine = try await FaxRenderer.render(.pdf(pdf), options: RenderOptions(resolution: .fine))
        let normal = try await FaxRenderer.render(.pdf(pdf), options: RenderOptions(resolution: .normal))
        XCTAssertEqual(normal.count, 3)
        for (f, n) in zip(fine, normal) {
            XCTAssertEqual(n.resolution, .normal)
            XCTAssertEqual(n.height, f.height / 2)
            XCTAssertEqual(n.width, 1728)
            // Same drawing, half the rows: about half the black pixels.
            let ratio = Double(BilevelImage(n).blackPixels) / Double(BilevelImage(f).blackPixels)
            XCTAssertEqual(ratio, 0.5, accuracy: 0.05)
        }
    }

    func testLetterPaperIsScaledToTheFaxLine() async throws {
        let dir = try TemporaryDirectory("render-letter")
        let ps = "%!PS\n<< /PageSize [612 792] >> setpagedevice 0 0 612 792 rectfill showpage\n"
        let pages = try await FaxRenderer.render(.postScript(Array(ps.utf8)), options: RenderOptions(paper: .letter))
        _ = dir
        XCTAssertEqual(pages.count, 1)
        XCTAssertEqual(pages[0].width, 1728)
        XCTAssertEqual(pages[0].height, 2156)
        // A full black Letter page fills the line (scaled from 1734 to 1728 pixels) without overflowing.
        XCTAssertGreaterThan(blackFraction(pages[0], x: 0.01...0.99, y: 0.01...0.99), 0.99)
    }

    func testPostScriptRendersAndMaxPagesIsEnforced() async throws {
        let pages = try await FaxRenderer.render(.postScript(Array(threePagePostScript.utf8)), options: RenderOptions())
        XCTAssertEqual(pages.count, 3)
        await expectRenderError(.tooManyPages) {
            _ = try await FaxRenderer.render(.postScript(Array(threePagePostScript.utf8)), options: RenderOptions(maxPages: 2))
        }
    }

    func testEncryptedPDFIsRefused() async throws {
        let dir = try TemporaryDirectory("render-encrypted")
        let pdf = try makeFile(threePagePostScript, device: "pdfwrite", extra: ["-sOwnerPassword=x", "-sUserPassword=y"],
                               name: "locked.pdf", in: dir)
        let locked = try bytes(pdf)
        let error = await expectRenderError(.encrypted) { _ = try await FaxRenderer.render(.pdf(locked)) }
        XCTAssertEqual(error?.description, "the PDF is password-protected")
    }

    func testTruncatedPDFIsBrokenWithGhostscriptsMessage() async throws {
        let dir = try TemporaryDirectory("render-truncated")
        let full = try bytes(try makeFile(threePagePostScript, device: "pdfwrite", name: "full.pdf", in: dir))
        let error = await expectRenderError(.broken) {
            _ = try await FaxRenderer.render(.pdf(Array(full.prefix(full.count * 3 / 10))))
        }
        print("truncated PDF: \(error?.description ?? "-")")
        XCTAssertTrue(error?.description.contains("cannot be read") ?? false)
        await expectRenderError(.broken) { _ = try await FaxRenderer.render(.pdf(Array("%PDF-1.4\nnot really\n".utf8))) }
    }

    func testEndlessPostScriptTimesOut() async throws {
        let clock = ContinuousClock.now
        let error = await expectRenderError(.timeout) {
            _ = try await FaxRenderer.render(.postScript(Array("%!PS\n{ 1 pop } loop\n".utf8)), options: RenderOptions(timeoutSeconds: 3))
        }
        let elapsed = ContinuousClock.now - clock
        XCTAssertLessThan(elapsed, .seconds(5), "the process group must be killed at the limit")
        XCTAssertEqual(error?.description, "Ghostscript gave up after 3 s")
    }

    func testMemoryLimitStopsAHungryProgram() async throws {
        // Allocates strings until the address-space limit: Ghostscript reports VMerror instead of eating the host.
        let ps = "%!PS\n/a [ 0 1 100000 { pop 1048576 string } for ] def showpage\n"
        await expectRenderError(.tooLarge) {
            _ = try await FaxRenderer.render(.postScript(Array(ps.utf8)), options: RenderOptions(memoryLimitMB: 200))
        }
    }

    func testSubprocessHasNoNetwork() throws {
        // The converter sees only a downed loopback (the sandbox is required by default: no skipping).
        XCTAssertTrue(Sandbox.status.isolated, "\(Sandbox.status.problems)")
        let work = try WorkDirectory()
        let result = try Sandbox.run("cat", ["/proc/net/dev"], options: RenderOptions(), workDir: work.path)
        XCTAssertEqual(result.exitCode, 0)
        let interfaces = result.log.split(separator: "\n").dropFirst(2).compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(interfaces, ["lo"])
    }

    func testBenchmarkHookComparesWithGhostscriptCfax() async throws {
        let dir = try TemporaryDirectory("render-bench")
        let tenPages = String(repeating: threePagePostScript.replacingOccurrences(of: "%!PS-Adobe-3.0\n", with: "") + "\n", count: 4)
        let pdf = try makeFile("%!PS\n" + tenPages, device: "pdfwrite", extra: ["-dLastPage=10"], name: "ten.pdf", in: dir)
        let result = try await RenderBench.pdfToSFF(path: pdf.path, repetitions: 1)
        print("bench pdf-to-sff: \(result)")
        XCTAssertEqual(result.pages, 10)
        XCTAssertGreaterThan(result.sffBytes, 10 * 2292)
        XCTAssertGreaterThan(result.oursPerPage, 0)
        XCTAssertGreaterThan(result.ghostscriptCfaxPerPage, 0)
    }

    func testCoverPageFieldsAreEscapedAndRendered() async throws {
        let dir = try TemporaryDirectory("render-cover")
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let hostile = "Offer (final) \\ price) show (pwned"
        let page = try await CoverPage.render(
            sender: "Müller GmbH", recipient: "Frau Schäfer", recipientNumber: "+49 30 1234567", subject: hostile,
            pages: 4, date: date, comment: "Bitte rückrufen.\nZweite Zeile mit einem sehr langen Text, der umbrochen werden muss, weil er viel zu lang ist.",
            language: "de", options: RenderOptions())
        XCTAssertEqual(page.width, 1728)
        XCTAssertEqual(page.height, 2292)
        XCTAssertGreaterThan(BilevelImage(page).blackPixels, 10_000)
        XCTAssertGreaterThan(blackFraction(page, x: 0.05...0.4, y: 0.03...0.12), 0.05, "Telefax heading at the top")

        // The same program through pdfwrite: every field reads back literally.
        let program = CoverPage.postScript(
            sender: "Müller GmbH", recipient: "Frau Schäfer", recipientNumber: "+49 30 1234567", subject: hostile,
            pages: 4, date: date, comment: "Bitte rückrufen.", language: "de", paper: .a4)
        let text = try pdfText(try Ghostscript.pdfwrite(program, options: RenderOptions()), in: dir, name: "cover.pdf")
        for expected in ["Telefax", "Frau Schäfer", "+49 30 1234567", "Müller GmbH", hostile, "4 (mit Deckblatt)", "Bitte rückrufen."] {
            XCTAssertTrue(text.contains(expected), "missing \(expected) in \(text)")
        }
    }
}
