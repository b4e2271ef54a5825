import FaxDocument
import Foundation
import TestSupport
import XCTest

final class FaxPerformanceTests: XCTestCase {
    /// SFF → pages → PDF throughput on realistic content (Ghostscript's pages, repeated).
    func testSFFToPDFThroughput() throws {
        let dir = try TemporaryDirectory("perf")
        let pages = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: true, in: dir)).pages
        let many = Array(repeatElement(pages, count: 20).joined())
        let sff = SFFWriter.write(many)
        let clock = ContinuousClock()
        var pdfBytes = 0
        let elapsed = try clock.measure {
            let document = try SFFReader.read(sff)
            XCTAssertEqual(document.pages.count, many.count)
            pdfBytes = PDFWriter.write(document.pages, title: "perf").count
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(many.count) / seconds
        print("SFF→PDF: \(many.count) fine pages in \(String(format: "%.3f", seconds)) s = \(Int(rate)) pages/s, PDF \(pdfBytes) bytes")
        XCTAssertGreaterThan(pdfBytes, sff.count / 2)
        #if DEBUG
            XCTAssertGreaterThan(rate, 5, "debug build")
        #else
            XCTAssertGreaterThan(rate, 100, "release build must convert more than 100 pages per second")
        #endif
    }
}
