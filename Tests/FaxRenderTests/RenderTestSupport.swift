import FaxDocument
import Foundation
import TestSupport
import XCTest

@testable import FaxRender

/// Three pages; page 2 is landscape with a filled box at its top-left corner and a bar along its top edge,
/// so the direction of the quarter turn shows.
let threePagePostScript = """
    %!PS-Adobe-3.0
    << /PageSize [595 842] >> setpagedevice
    /Helvetica findfont 28 scalefont setfont
    72 760 moveto (Faxgate render test, page one) show
    /Times-Roman findfont 14 scalefont setfont
    72 730 moveto (The quick brown fox jumps over the lazy dog 0123456789) show
    4 setlinewidth 60 60 475 600 rectstroke
    100 200 200 150 rectfill
    showpage
    << /PageSize [842 595] >> setpagedevice
    30 495 100 70 rectfill
    0 585 842 10 rectfill
    /Helvetica-Bold findfont 40 scalefont setfont
    200 300 moveto (Landscape page two) show
    showpage
    << /PageSize [595 842] >> setpagedevice
    /Courier findfont 12 scalefont setfont
    0 1 30 { dup 16 mul 700 exch sub 72 exch moveto (Courier line of fixed width text, page three) show } for
    newpath 297 150 100 0 360 arc fill
    showpage
    """

/// A small image PostScript page: a dark blue box in the top-left quadrant of a `width` × `height` pt page.
func boxPostScript(width: Int, height: Int) -> String {
    """
    %!PS
    << /PageSize [\(width) \(height)] >> setpagedevice
    1 1 1 setrgbcolor 0 0 \(width) \(height) rectfill
    0 0 0.3 setrgbcolor \(width / 10) \(height * 6 / 10) \(width / 4) \(height / 4) rectfill
    0 0 1 setrgbcolor /Helvetica findfont 20 scalefont setfont \(width / 10) \(height * 6 / 10 - 30) moveto (Box above) show
    showpage
    """
}

func makeFile(_ postScript: String, device: String, extra: [String] = [], name: String, in dir: TemporaryDirectory) throws -> URL {
    let ps = dir.url.appendingPathComponent("\(name).ps"), out = dir.url.appendingPathComponent(name)
    try postScript.write(to: ps, atomically: true, encoding: .utf8)
    try runTool(faxTool("gs"), ["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=\(device)"] + extra + ["-sOutputFile=\(out.path)", ps.path])
    return out
}

func bytes(_ url: URL) throws -> [UInt8] { try [UInt8](Data(contentsOf: url)) }

/// Black pixels of `page` in a rectangle given as fractions of the page.
func blackFraction(_ page: FaxPage, x: ClosedRange<Double>, y: ClosedRange<Double>) -> Double {
    let x0 = Int(x.lowerBound * Double(page.width)), x1 = Int(x.upperBound * Double(page.width))
    let y0 = Int(y.lowerBound * Double(page.height)), y1 = Int(y.upperBound * Double(page.height))
    var black = 0
    for yy in y0..<y1 { for xx in x0..<x1 where page.isBlack(x: xx, y: yy) { black += 1 } }
    return Double(black) / Double(max(1, (x1 - x0) * (y1 - y0)))
}

/// Columns `x0 ..< x0 + width` of a page, for comparing our centred 1728-pixel page with Ghostscript's 1686.
func crop(_ page: FaxPage, x0: Int, width: Int) -> BilevelImage {
    let rowBytes = (width + 7) / 8
    var bits = [UInt8](repeating: 0, count: rowBytes * page.height)
    for y in 0..<page.height {
        for x in 0..<width where page.isBlack(x: x0 + x, y: y) { bits[y * rowBytes + (x >> 3)] |= 0x80 >> UInt8(x & 7) }
    }
    return BilevelImage(width: width, height: page.height, bitmap: bits)
}

/// Expects `body` to fail with a RenderError of `kind`; returns it.
@discardableResult
func expectRenderError(_ kind: RenderError.Kind, file: StaticString = #filePath, line: UInt = #line,
                       _ body: () async throws -> Void) async -> RenderError? {
    do {
        try await body()
        XCTFail("expected \(kind), got success", file: file, line: line)
    } catch let error as RenderError {
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected RenderError \(kind), got \(error)", file: file, line: line)
    }
    return nil
}

/// Text of a PDF through poppler.
func pdfText(_ pdf: [UInt8], in dir: TemporaryDirectory, name: String) throws -> String {
    let url = dir.url.appendingPathComponent(name)
    try Data(pdf).write(to: url)
    return try runTool(faxTool("pdftotext"), ["-layout", url.path, "-"]).stdoutText
}
