import FaxDocument
import Foundation
import TestSupport
import XCTest

@testable import FaxRender

final class TextRenderTests: XCTestCase {
    static let longLine = (1...60).map { "word\($0)" }.joined(separator: " ")  // > 300 characters

    func testPlainTextWrapsPaginatesAndKeepsUmlauts() async throws {
        XCTAssertGreaterThanOrEqual(Self.longLine.count, 300)
        var body = "Grüße aus Köln – Größe 5 €, naïve “quotes” and a Polish ł, Chinese 中.\n\n" + Self.longLine + "\n"
        body += (1...70).map { "Zeile \($0)\twith a tab" }.joined(separator: "\n")

        let layout = TextLayout.paginate(body, paper: .a4)
        XCTAssertEqual(layout.count, 2, "60 lines per A4 page")
        XCTAssertTrue(layout.joined().allSatisfy { $0.count <= 80 })
        XCTAssertEqual(layout[0][0], Latin1.bytes("Grüße aus Köln - Größe 5 EUR, naïve \"quotes\" and a Polish l, Chinese ?."))
        let wrapped = TextLayout.wrap(Latin1.bytes(Self.longLine))
        XCTAssertGreaterThan(wrapped.count, 4)
        XCTAssertTrue(wrapped.allSatisfy { $0.count <= 80 && $0.last != 0x20 })
        XCTAssertEqual(wrapped.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "), Self.longLine, "broken at spaces only")
        XCTAssertEqual(Array(layout[0][2..<(2 + wrapped.count)]), wrapped)
        XCTAssertTrue(layout.joined().contains(Array("Zeile 10        with a tab".utf8)), "tabs expand to columns of 8")

        let pages = try await FaxRenderer.render(.text(body), options: RenderOptions())
        XCTAssertEqual(pages.count, 2)
        for page in pages {
            XCTAssertEqual(page.width, 1728)
            XCTAssertGreaterThan(BilevelImage(page).blackPixels, 10_000)
        }

        // The same program through pdfwrite reads back with its umlauts: the Latin-1 glyphs are really used.
        let dir = try TemporaryDirectory("render-text")
        let pdf = try Ghostscript.pdfwrite(TextLayout.postScript(pages: layout, paper: .a4), options: RenderOptions())
        let text = try pdfText(pdf, in: dir, name: "text.pdf")
        XCTAssertTrue(text.contains("Grüße aus Köln - Größe 5 EUR, naïve \"quotes\""), text)
        XCTAssertTrue(text.contains("word60"))
        XCTAssertTrue(text.contains("Zeile 70"))
    }

    func testPostScriptLiteralsCannotEscape() {
        XCTAssertEqual(PostScript.literal("a(b)c\\d"), "(a\\(b\\)c\\\\d)")
        XCTAssertEqual(PostScript.literal("ü\u{7}x"), "(\\374x)")
        XCTAssertEqual(PostScript.literal(Latin1.bytes("€")), "(EUR)")
    }

    func testHTMLBecomesReadableText() async throws {
        let html = """
            <!DOCTYPE html><html><head><title>Ignored title</title><style>p { color: red }</style>
            <script>var secret = "do not print";</script></head>
            <body><h1>Bestellung&nbsp;Nr.&#160;42</h1><p>Sehr geehrte Damen &amp; Herren,<br>bitte liefern Sie:</p>
            <ul><li>Äpfel</li><li>Birnen &lt;frisch&gt;</li></ul>
            <ol><li>first</li><li>second</li></ol>
            <table><tr><th>Artikel</th><th>Menge</th></tr><tr><td>Schrauben</td><td>100</td></tr></table>
            <!-- a comment <p>hidden</p> -->
            <p>Mit freundlichen   Gr&uuml;&szlig;en<br/>Hans &#x263A;</p><SCRIPT type="text/javascript">alert("x")</SCRIPT>
            </body></html>
            """
        let text = HTMLText.text(html)
        print(text)
        for expected in ["Bestellung Nr. 42", "Sehr geehrte Damen & Herren,\nbitte liefern Sie:", "* Äpfel", "* Birnen <frisch>",
                         "1. first", "2. second", "Artikel | Menge", "Schrauben | 100", "Mit freundlichen Grüßen\nHans \u{263A}"] {
            XCTAssertTrue(text.contains(expected), "missing \(expected.debugDescription)")
        }
        for absent in ["secret", "do not print", "color", "Ignored title", "hidden", "alert"] {
            XCTAssertFalse(text.contains(absent), "\(absent) leaked")
        }

        let pages = try await FaxRenderer.render(.html(html), options: RenderOptions())
        XCTAssertEqual(pages.count, 1)
        XCTAssertGreaterThan(BilevelImage(pages[0]).blackPixels, 2_000)
        let dir = try TemporaryDirectory("render-html")
        let pdf = try Ghostscript.pdfwrite(TextLayout.postScript(pages: TextLayout.paginate(text, paper: .a4), paper: .a4), options: RenderOptions())
        let readBack = try pdfText(pdf, in: dir, name: "html.pdf")
        XCTAssertTrue(readBack.contains("Schrauben | 100"))
        XCTAssertTrue(readBack.contains("Hans ?"), "a character without a Latin-1 glyph shows as ?")
        XCTAssertFalse(readBack.contains("do not print"))
    }

    func testTooLongTextIsRefusedBeforeRendering() async {
        let text = String(repeating: "line\n", count: 61 * 3)
        await expectRenderError(.tooManyPages) { _ = try await FaxRenderer.render(.text(text), options: RenderOptions(maxPages: 3)) }
    }

    func testSendReportShowsFactsAndThumbnail() async throws {
        let dir = try TemporaryDirectory("render-report")
        let pdf = try makeFile(threePagePostScript, device: "pdfwrite", name: "doc.pdf", in: dir)
        let first = try await FaxRenderer.render(.pdf(try bytes(pdf)), options: RenderOptions(resolution: .normal))[0]
        let facts = SendReportFacts(
            number: "+49 30 9876543", remoteStationID: "+49 30 9876543 ACME", start: Date(timeIntervalSince1970: 1_700_000_000),
            duration: 83, pagesSent: 3, pagesTotal: 4, resolution: .normal, bitRate: 14400,
            resultText: "Verbindung unterbrochen (0x3301)", success: false, jobID: "job-0815", sender: "anna@example.com", language: "de")

        for (label, page) in [("with", Optional(first)), ("without", nil)] {
            let report = try await SendReport.pdf(facts, firstPage: page)
            XCTAssertTrue(report.starts(with: Array("%PDF-".utf8)))
            let text = try pdfText(report, in: dir, name: "report-\(label).pdf")
            for expected in ["Sendebericht", "+49 30 9876543", "+49 30 9876543 ACME", "3 von 4", "Verbindung unterbrochen (0x3301)",
                             "1 min 23 s", "14400 bit/s", "normal (204 × 98 dpi)", "job-0815", "Nicht gesendet", "Übertragungsrate"] {
                XCTAssertTrue(text.contains(expected), "\(label): missing \(expected) in\n\(text)")
            }

            // Rasterized at 72 dpi (1 px = 1 pt): the thumbnail box holds page 1's big text and box.
            let url = dir.url.appendingPathComponent("report-\(label).pdf")
            let prefix = dir.url.appendingPathComponent("raster-\(label)")
            try runTool(faxTool("pdftoppm"), ["-r", "72", "-mono", url.path, prefix.path])
            let raster = try BilevelImage(pbmFile: prefix.path + "-1.pbm")
            let box = SendReport.thumbnailBox
            let top = 842 - Int(box.y + box.width * 297 / 210) + 3, bottom = 842 - Int(box.y) - 3
            var dark = 0
            for y in top..<bottom { for x in Int(box.x) + 3..<Int(box.x + box.width) - 3 where raster.isBlack(x, y) { dark += 1 } }
            print("report \(label) thumbnail: \(dark) dark pixels")
            if page == nil {
                XCTAssertEqual(dark, 0)
            } else {
                XCTAssertGreaterThan(dark, 2_000)
                // Page 1's filled box (x 100–300 pt, y 200–350 pt of 595 × 842) at 200/595 scale.
                let s = box.width / 595
                let bx = Int(box.x + (21.0 / 1728 * 595 + 200) * s), by = 842 - Int(box.y + 275 * s)
                XCTAssertTrue(raster.isBlack(bx, by), "filled box visible in the thumbnail")
            }
        }

        let english = try await SendReport.pdf(
            SendReportFacts(number: "123", remoteStationID: "", start: Date(), duration: 12, pagesSent: 1, pagesTotal: 1,
                            resolution: .fine, bitRate: 9600, resultText: "OK", success: true, jobID: "j1", sender: "s", language: "en"),
            firstPage: nil)
        let englishText = try pdfText(english, in: dir, name: "en.pdf")
        for expected in ["Transmission report", "Sent", "1 of 1", "Remote station ID", "fine (204 × 196 dpi)"] {
            XCTAssertTrue(englishText.contains(expected), "missing \(expected)")
        }
    }
}
