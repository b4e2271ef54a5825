import FaxDocument
import Foundation
import TestSupport
import XCTest

/// Cross-checks against independent implementations: Ghostscript writes SFF, sfftobmp reads it.
final class SFFGhostscriptTests: XCTestCase {
    func testFineResolutionDecodeEqualsSfftobmp() throws {
        let dir = try TemporaryDirectory("sff-gs")
        let sff = try ghostscriptSFF(faxTestPostScript, fine: true, in: dir)
        let document = try SFFReader.read(sff)
        XCTAssertEqual(document.problems, [])
        XCTAssertEqual(document.pages.count, 3)
        let reference = try sfftobmpPages(sff, keepResolution: true, in: dir, label: "gs-fine")
        XCTAssertEqual(reference.count, 3)
        for (page, ref) in zip(document.pages, reference) {
            XCTAssertEqual(page.resolution, .fine)
            XCTAssertEqual(page.width, 1728)
            XCTAssertEqual(page.height, ref.height)
            XCTAssertEqual(page.width, ref.width)
            XCTAssertEqual(page.bitmap, ref.bitmap, "bit-exact with sfftobmp")
            XCTAssertGreaterThan(BilevelImage(page).blackPixels, 5000, "page has real content")
        }
        XCTAssertNotEqual(document.pages[0].bitmap, document.pages[1].bitmap)
        XCTAssertNotEqual(document.pages[1].bitmap, document.pages[2].bitmap)
        // Ghostscript's top margin is white: its first line must be the canonical white code.
        XCTAssertEqual(document.pages[0].mhLines[0], [0xB2, 0x59, 0x01])
    }

    func testNormalResolutionDecodeEqualsSfftobmp() throws {
        let dir = try TemporaryDirectory("sff-gs")
        let sff = try ghostscriptSFF(faxTestPostScript, fine: false, in: dir)
        let document = try SFFReader.read(sff)
        XCTAssertEqual(document.problems, [])
        XCTAssertEqual(document.pages.count, 3)
        // With -r sfftobmp keeps the 98-lpi rows as they are: must match our rows exactly.
        let kept = try sfftobmpPages(sff, keepResolution: true, in: dir, label: "kept")
        // Without -r it doubles every row to restore the aspect ratio: compare with our fineResolution().
        let doubled = try sfftobmpPages(sff, keepResolution: false, in: dir, label: "doubled")
        XCTAssertEqual(kept.count, 3)
        XCTAssertEqual(doubled.count, 3)
        for (i, page) in document.pages.enumerated() {
            XCTAssertEqual(page.resolution, .normal)
            XCTAssertEqual(page.height, kept[i].height)
            XCTAssertEqual(page.bitmap, kept[i].bitmap, "page \(i + 1) rows")
            let fine = page.fineResolution()
            XCTAssertEqual(fine.height, doubled[i].height)
            XCTAssertEqual(fine.bitmap, doubled[i].bitmap, "page \(i + 1) doubled rows")
        }
    }

    func testOurSFFIsReadIdenticallyBySfftobmp() throws {
        let dir = try TemporaryDirectory("sff-gs")
        for fine in [true, false] {
            let pages = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: fine, in: dir)).pages
            // Re-create the pages from their bitmaps, so the codes are our encoder's, not Ghostscript's.
            let ours = pages.map { FaxPage(bitmap: $0.bitmap, width: $0.width, height: $0.height, resolution: $0.resolution) }
            XCTAssertEqual(ours.map(\.mhLines), pages.map(\.mhLines), "MH is canonical for these runs: same bytes as Ghostscript")
            let sff = SFFWriter.write(ours)
            let label = fine ? "ours-fine" : "ours-normal"
            let reference = try sfftobmpPages(sff, keepResolution: true, in: dir, label: label)
            XCTAssertEqual(reference.count, 3)
            for (page, ref) in zip(ours, reference) {
                XCTAssertEqual(ref.width, page.width)
                XCTAssertEqual(ref.height, page.height)
                XCTAssertEqual(ref.bitmap, page.bitmap, "\(label): sfftobmp reads what we wrote")
            }
            let again = try SFFReader.read(sff)
            XCTAssertEqual(again.problems, [])
            XCTAssertEqual(again.pages, ours)
        }
    }

    func testLongLinesUseTheTwoByteLengthRecord() throws {
        // Alternating pixels make lines far longer than 216 bytes of code.
        let width = 1728, height = 40
        var bitmap = [UInt8](repeating: 0, count: width / 8 * height)
        for y in 0..<height where y % 2 == 0 { for i in 0..<(width / 8) { bitmap[y * width / 8 + i] = 0x55 } }
        let page = FaxPage(bitmap: bitmap, width: width, height: height, resolution: .fine)
        XCTAssertGreaterThan(page.mhLines[0].count, 216)
        let sff = SFFWriter.write([page])
        let dir = try TemporaryDirectory("sff-long")
        let reference = try sfftobmpPages(sff, keepResolution: true, in: dir, label: "long")
        XCTAssertEqual(reference.first?.bitmap, page.bitmap)
        XCTAssertEqual(try SFFReader.read(sff).pages, [page])
    }
}
