import FaxDocument
import Foundation
import TestSupport
import XCTest

final class PDFWriterTests: XCTestCase {
    struct Rendered {
        var pdfPath: String
        var pages: [FaxPage]
        var dir: TemporaryDirectory
    }

    private func makePDF(fine: Bool, title: String = "Fax from +49 30 1234567") throws -> Rendered {
        let dir = try TemporaryDirectory("pdf")
        let pages = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: fine, in: dir)).pages
        let pdf = PDFWriter.write(pages, title: title)
        let path = dir.url.appendingPathComponent("fax.pdf").path
        try Data(pdf).write(to: URL(fileURLWithPath: path))
        return Rendered(pdfPath: path, pages: pages, dir: dir)
    }

    private func pdfinfo(_ path: String, page: Int? = nil) throws -> [String: String] {
        let args = page.map { ["-f", "\($0)", "-l", "\($0)"] } ?? []
        let text = try runTool(faxTool("pdfinfo"), args + [path]).stdoutText
        var info: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            info[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return info
    }

    /// Page size in points from pdfinfo's "W x H pts" for page `page`.
    private func pageSize(_ path: String, page: Int) throws -> (Double, Double) {
        let info = try pdfinfo(path, page: page)
        let value = try XCTUnwrap(info["Page \(String(repeating: " ", count: max(0, 4 - String(page).count)))\(page) size"] ?? info["Page size"])
        let parts = value.split(separator: " ")
        return (try XCTUnwrap(Double(parts[0])), try XCTUnwrap(Double(parts[2])))
    }

    private func pdftoppm(_ path: String, xdpi: Int, ydpi: Int, dir: TemporaryDirectory, label: String) throws -> [BilevelImage] {
        let out = dir.url.appendingPathComponent(label)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try runTool(faxTool("pdftoppm"), ["-mono", "-rx", "\(xdpi)", "-ry", "\(ydpi)", path, out.appendingPathComponent("p").path])
        return try pbmFiles(in: out)
    }

    private func ghostscriptRender(_ path: String, resolution: String, dir: TemporaryDirectory, label: String) throws -> [BilevelImage] {
        let out = dir.url.appendingPathComponent(label)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try runTool(faxTool("gs"), ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pbmraw", "-r\(resolution)",
                                   "-sOutputFile=\(out.path)/p-%03d.pbm", path])
        return try pbmFiles(in: out)
    }

    func testPDFStructureAndPageSizes() throws {
        let fine = try makePDF(fine: true, title: "Fax von Müller (Büro)")
        let info = try pdfinfo(fine.pdfPath)
        XCTAssertEqual(info["Pages"], "3")
        XCTAssertEqual(info["Producer"], "Faxgate")
        XCTAssertEqual(info["Title"], "Fax von Müller (Büro)")
        let normal = try makePDF(fine: false)
        XCTAssertEqual(try pdfinfo(normal.pdfPath)["Pages"], "3")
        for rendered in [fine, normal] {
            for page in 1...3 {
                let (w, h) = try pageSize(rendered.pdfPath, page: page)
                // A fax line is 1728 dots at 204 dpi = 215 mm, a little wider than A4's 210 mm (+2.5 %); the height is A4.
                XCTAssertEqual(w, 1728.0 / 204 * 72, accuracy: 0.05)
                XCTAssertEqual(w, 595, accuracy: 595 * 0.03)
                XCTAssertEqual(h, 842, accuracy: 842 * 0.02, "98-lpi pages keep their aspect ratio")
            }
        }
        XCTAssertEqual(try runTool(faxTool("pdfinfo"), [fine.pdfPath]).stderrText, "", "poppler finds nothing to repair")
        try assertXrefPointsAtObjects(Array(Data(contentsOf: URL(fileURLWithPath: fine.pdfPath))))
        // Without /Title the Info dictionary still names the producer.
        let untitled = PDFWriter.write(fine.pages, title: nil)
        let path = fine.dir.url.appendingPathComponent("untitled.pdf").path
        try Data(untitled).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try pdfinfo(path)["Producer"], "Faxgate")
        XCTAssertNil(try pdfinfo(path)["Title"])
    }

    /// Every xref entry must point at "<n> 0 obj": readers that do not rebuild broken tables depend on it.
    private func assertXrefPointsAtObjects(_ pdf: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws {
        let text = String(decoding: pdf, as: UTF8.self)
        let tail = try XCTUnwrap(text.range(of: "startxref\n", options: .backwards))
        let xref = try XCTUnwrap(Int(text[tail.upperBound...].prefix { $0.isNumber }))
        XCTAssertEqual(String(decoding: pdf[xref..<(xref + 5)], as: UTF8.self), "xref\n", file: file, line: line)
        let lines = String(decoding: pdf[xref...], as: UTF8.self).split(separator: "\n")
        let count = try XCTUnwrap(Int(lines[1].split(separator: " ")[1]))
        for object in 1..<count {
            let entry = lines[2 + object]
            XCTAssertEqual(entry.utf8.count, 19, "entry plus newline is 20 bytes", file: file, line: line)
            let offset = try XCTUnwrap(Int(entry.prefix(10)))
            let expected = Array("\(object) 0 obj".utf8)
            XCTAssertEqual(Array(pdf[offset..<(offset + expected.count)]), expected, "object \(object)", file: file, line: line)
        }
    }

    func testLongAndOddSizedPagesKeepTheirPhysicalSize() throws {
        let dir = try TemporaryDirectory("pdf-long")
        // A 1.5 m receipt-style page at normal resolution and a narrow page: drawn at full length, not squeezed.
        var long = [UInt8](repeating: 0, count: 216 * 5800)
        for y in stride(from: 0, to: 5800, by: 100) { for i in 0..<216 { long[y * 216 + i] = 0xFF } }
        let pages = [
            FaxPage(bitmap: long, width: 1728, height: 5800, resolution: .normal),
            FaxPage(bitmap: [UInt8](repeating: 0xF0, count: 130 * 300), width: 1035, height: 300, resolution: .fine),
        ]
        let path = dir.url.appendingPathComponent("long.pdf").path
        try Data(PDFWriter.write(pages, title: "long")).write(to: URL(fileURLWithPath: path))
        let (w1, h1) = try pageSize(path, page: 1)
        XCTAssertEqual(w1, 609.88, accuracy: 0.01)
        XCTAssertEqual(h1, 5800.0 / 98 * 72, accuracy: 0.01)
        let (w2, h2) = try pageSize(path, page: 2)
        XCTAssertEqual(w2, 1035.0 / 204 * 72, accuracy: 0.01)
        XCTAssertEqual(h2, 300.0 / 196 * 72, accuracy: 0.01)
        let rendered = try pdftoppm(path, xdpi: 204, ydpi: 98, dir: dir, label: "long")
        XCTAssertEqual(compareImages(rendered[0], BilevelImage(pages[0])).differing, 0)
        let narrow = try pdftoppm(path, xdpi: 204, ydpi: 196, dir: dir, label: "narrow")
        XCTAssertEqual(compareImages(narrow[1], BilevelImage(pages[1])).differing, 0)
        try assertXrefPointsAtObjects(Array(Data(contentsOf: URL(fileURLWithPath: path))))
    }

    func testPDFRendersTheFaxPixelsWithPopplerAndGhostscript() throws {
        for fine in [true, false] {
            let rendered = try makePDF(fine: fine)
            let ydpi = fine ? 196 : 98
            let poppler = try pdftoppm(rendered.pdfPath, xdpi: 204, ydpi: ydpi, dir: rendered.dir, label: "poppler")
            let ghost = try ghostscriptRender(rendered.pdfPath, resolution: "204x\(ydpi)", dir: rendered.dir, label: "gspdf")
            XCTAssertEqual(poppler.count, 3)
            XCTAssertEqual(ghost.count, 3)
            for (i, page) in rendered.pages.enumerated() {
                let original = BilevelImage(page)
                let p = compareImages(poppler[i], original), g = compareImages(ghost[i], original)
                print("PDF vs fax bitmap, \(fine ? "fine" : "normal") page \(i + 1): pdftoppm \(p), gs \(g)")
                XCTAssertLessThan(p.fraction, 0.001, "pdftoppm shows the fax pixels")
                XCTAssertLessThan(g.fraction, 0.001, "Ghostscript shows the fax pixels")
            }
        }
    }

    func testPDFMatchesGhostscriptRenderingOfTheSource() throws {
        for fine in [true, false] {
            let rendered = try makePDF(fine: fine)
            let resolution = fine ? "204x196" : "204x98"
            let ours = try pdftoppm(rendered.pdfPath, xdpi: 204, ydpi: fine ? 196 : 98, dir: rendered.dir, label: "ours")
            let source = try ghostscriptPBM(faxTestPostScript, resolution: resolution, in: rendered.dir)
            XCTAssertEqual(ours.count, 3)
            XCTAssertEqual(source.count, 3)
            for i in 0..<3 {
                let difference = compareImages(ours[i], source[i])
                print("PDF vs Ghostscript rendering of the PostScript, \(resolution) page \(i + 1): \(difference)")
                XCTAssertLessThan(difference.fraction, 0.005)
                XCTAssertGreaterThan(source[i].blackPixels, 5000)
            }
            // Pages differ, so a writer that repeated one page would fail above.
            XCTAssertGreaterThan(compareImages(ours[0], source[1]).fraction, 0.01)
        }
    }

    /// A4 output: the page box is A4, the 1728-dot line fills its width, the aspect is kept, and the rendered
    /// page still shows the fax's pixels (rendered at the resolution that maps the scaled page back to 1728 dots).
    func testA4PageSizeScalesTheFaxLineToA4Width() throws {
        let a4 = (w: 595.27559055, h: 841.88976378)
        for fine in [true, false] {
            let dir = try TemporaryDirectory("pdf-a4")
            let pages = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: fine, in: dir)).pages
            let path = dir.url.appendingPathComponent("a4.pdf").path
            try Data(PDFWriter.write(pages, title: "a4", pageSize: .a4)).write(to: URL(fileURLWithPath: path))
            XCTAssertEqual(try runTool(faxTool("pdfinfo"), [path]).stderrText, "", "poppler finds nothing to repair")
            try assertXrefPointsAtObjects(Array(Data(contentsOf: URL(fileURLWithPath: path))))
            for page in 1...3 {
                let (w, h) = try pageSize(path, page: page)
                XCTAssertEqual(w, a4.w, accuracy: 0.01, "A4 width")
                XCTAssertEqual(h, a4.h, accuracy: 0.01, "A4 height")
            }
            // 1728 dots over 595.28 pt is 209.0 dpi across; the same scale down keeps the aspect.
            let scale = a4.w / (1728.0 / 204 * 72)
            let xdpi = 204 / scale, ydpi = Double(fine ? 196 : 98) / scale
            let out = dir.url.appendingPathComponent("r")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try runTool(faxTool("pdftoppm"), ["-mono", "-rx", String(format: "%.4f", xdpi), "-ry", String(format: "%.4f", ydpi),
                                              path, out.appendingPathComponent("p").path])
            let rendered = try pbmFiles(in: out)
            XCTAssertEqual(rendered.count, 3)
            for (i, page) in pages.enumerated() {
                XCTAssertEqual(rendered[i].width, 1728, "the fax line spans the whole A4 width")
                let original = BilevelImage(page)
                let diff = compareImages(rendered[i], original)
                print("A4 PDF vs fax bitmap, \(fine ? "fine" : "normal") page \(i + 1): \(diff)")
                XCTAssertLessThan(diff.fraction, 0.002, "scaled page still shows the fax pixels")
                XCTAssertGreaterThan(original.blackPixels, 5000)
            }
            XCTAssertGreaterThan(compareImages(rendered[0], BilevelImage(pages[1])).fraction, 0.01)
        }
    }

    /// A page longer than A4 is scaled down to fit (nothing cut off at 100 %), centred, aspect kept.
    func testA4FitsLongPagesWithoutCutting() throws {
        let dir = try TemporaryDirectory("pdf-a4-long")
        var long = [UInt8](repeating: 0, count: 216 * 2400)
        for y in stride(from: 0, to: 2400, by: 100) { for i in 0..<216 { long[y * 216 + i] = 0xFF } }
        for y in 0..<2400 { long[y * 216] |= 0x80; long[y * 216 + 215] |= 0x01 }   // left and right edge lines
        let page = FaxPage(bitmap: long, width: 1728, height: 2400, resolution: .fine)
        let path = dir.url.appendingPathComponent("long.pdf").path
        try Data(PDFWriter.write([page], title: nil, pageSize: .a4)).write(to: URL(fileURLWithPath: path))
        let (w, h) = try pageSize(path, page: 1)
        XCTAssertEqual(w, 595.28, accuracy: 0.01)
        XCTAssertEqual(h, 841.89, accuracy: 0.01)
        // Rendered at 72 dpi scale 4: every black row of the fax is on the page, the edges too.
        let rendered = try pdftoppm(path, xdpi: 288, ydpi: 288, dir: dir, label: "long")
        let image = try XCTUnwrap(rendered.first)
        let rowsWithBlack = (0..<image.height).filter { y in (600..<1700).contains { image.isBlack($0, y) } }
        var bars = 0, previous = -2
        for y in rowsWithBlack { if y != previous + 1 { bars += 1 }; previous = y }
        XCTAssertEqual(bars, 24, "every bar of the fax is on the page, the last one too")
        // Scaled to the height, the page is narrower than A4 and centred: white margins left and right.
        let blackColumns = (0..<image.width).filter { x in image.isBlack(x, image.height / 2 + 1) || image.isBlack(x, image.height / 2) }
        let left = try XCTUnwrap(blackColumns.first), right = try XCTUnwrap(blackColumns.last)
        XCTAssertEqual(Double(left), Double(image.width - 1 - right), accuracy: 4, "centred")
        XCTAssertGreaterThan(left, 10)
    }
}
