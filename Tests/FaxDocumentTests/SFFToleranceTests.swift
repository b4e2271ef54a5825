import FaxDocument
import Foundation
import TestSupport
import XCTest

/// Hand-built SFF files with the defects real controllers and lines produce.
final class SFFToleranceTests: XCTestCase {
    static let width = 1728
    static let rowBytes = 216

    static func row(black ranges: [Range<Int>], width: Int = 1728) -> [UInt8] {
        var row = [UInt8](repeating: 0, count: (width + 7) / 8)
        for range in ranges { for x in range { row[x >> 3] |= 0x80 >> UInt8(x & 7) } }
        return row
    }
    static let rowA = row(black: [100..<300])
    static let rowB = row(black: [0..<10, 500..<1500, 1700..<1728])
    static let white = [UInt8](repeating: 0, count: 216)

    func documentHeader(firstPage: Int = 0x14, pages: Int = 1) -> [UInt8] {
        [0x53, 0x66, 0x66, 0x66, 1, 0, 0, 0, UInt8(pages), 0, UInt8(firstPage & 0xFF), UInt8(firstPage >> 8), 0, 0, 0, 0, 0, 0, 0, 0]
    }

    func pageHeader(fine: Bool = true, width: Int = 1728, length: UInt8 = 0x10) -> [UInt8] {
        var h: [UInt8] = [0xFE, length, fine ? 1 : 0, 0, 0, 0, UInt8(width & 0xFF), UInt8(width >> 8), 0, 0]
        h += [UInt8](repeating: 0, count: Int(length) - 8)
        return h
    }

    func line(_ row: [UInt8], width: Int = 1728) -> [UInt8] {
        let code = MHCodec.encodeLine(row, width: width)
        return [UInt8(code.count)] + code
    }

    let end: [UInt8] = [0xFE, 0x00]

    /// Every stored MH line must decode, strictly, to its bitmap row: the PDF writer relies on it.
    func assertCodesMatchBitmap(_ page: FaxPage, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(page.mhLines.count, page.height, file: file, line: line)
        for (y, code) in page.mhLines.enumerated() {
            let row = try? MHCodec.decodeLine(code, width: page.width)
            XCTAssertEqual(row.map(Array.init), Array(page.bitmap[(y * page.rowBytes)..<((y + 1) * page.rowBytes)]), "row \(y)", file: file, line: line)
        }
    }

    func rows(_ page: FaxPage) -> [[UInt8]] {
        (0..<page.height).map { Array(page.bitmap[($0 * page.rowBytes)..<(($0 + 1) * page.rowBytes)]) }
    }

    func testAVMStyleFirstPageOffsetWithPadding() throws {
        var sff = documentHeader(firstPage: 0x20) + [UInt8](repeating: 0xAA, count: 12)
        sff += pageHeader() + line(Self.rowA) + line(Self.rowB) + end
        let document = try SFFReader.read(sff)
        XCTAssertEqual(document.problems, [])
        XCTAssertEqual(document.pages.count, 1)
        XCTAssertEqual(rows(document.pages[0]), [Self.rowA, Self.rowB])
    }

    func testWhiteSkipRecordsAndUserDataRecords() throws {
        // 217 = 1 white line, 253 = 37 white lines; 255 n = n bytes of non-image data.
        let sff = documentHeader() + pageHeader() + [217] + line(Self.rowA) + [253] + [255, 3, 0x12, 0x34, 0x56] + line(Self.rowB) + end
        let page = try XCTUnwrap(SFFReader.read(sff).pages.first)
        XCTAssertEqual(page.height, 1 + 1 + 37 + 1)
        XCTAssertEqual(rows(page), [Self.white, Self.rowA] + Array(repeating: Self.white, count: 37) + [Self.rowB])
        XCTAssertEqual(page.badLines, 0)
        assertCodesMatchBitmap(page)
    }

    func testBadLineRecordsRepeatThePreviousLine() throws {
        let sff = documentHeader() + pageHeader() + [255, 0] + line(Self.rowA) + line(Self.rowB) + [255, 0, 255, 0] + line(Self.rowA) + end
        let document = try SFFReader.read(sff)
        let page = try XCTUnwrap(document.pages.first)
        // A bad first line has nothing above it and becomes white.
        XCTAssertEqual(rows(page), [Self.white, Self.rowA, Self.rowB, Self.rowB, Self.rowB, Self.rowA])
        XCTAssertEqual(page.badLines, 3)
        XCTAssertEqual(document.problems, [.badLines(page: 1, count: 3)])
        XCTAssertEqual(document.problems.first?.description, "page 1: 3 damaged lines replaced by the line above")
        assertCodesMatchBitmap(page)
    }

    func testUndecodableLinesAreReplacedAndCounted() throws {
        let garbage: [UInt8] = [3, 0x00, 0x00, 0x80]          // 15 zero bits, then a 1: no MH code
        let cutMakeUp: [UInt8] = [2, 0xB2, 0x59]              // make-up 1728 without its terminating code
        let sff = documentHeader() + pageHeader() + line(Self.rowA) + garbage + line(Self.rowB) + cutMakeUp + end
        let document = try SFFReader.read(sff)
        let page = try XCTUnwrap(document.pages.first)
        XCTAssertEqual(rows(page), [Self.rowA, Self.rowA, Self.rowB, Self.rowB])
        XCTAssertEqual(page.badLines, 2)
        XCTAssertEqual(document.problems, [.badLines(page: 1, count: 2)])
        assertCodesMatchBitmap(page)
    }

    func testLinesOfTheWrongWidthArePaddedOrCut() throws {
        let narrow = Self.row(black: [500..<1000], width: 1000)
        let wide = Self.row(black: [1600..<2000], width: 2048)
        let sff = documentHeader() + pageHeader() + line(narrow, width: 1000) + line(wide, width: 2048) + line(Self.rowA) + end
        let document = try SFFReader.read(sff)
        let page = try XCTUnwrap(document.pages.first)
        XCTAssertEqual(rows(page), [Self.row(black: [500..<1000]), Self.row(black: [1600..<1728]), Self.rowA])
        XCTAssertEqual(document.problems, [.wrongLineWidth(page: 1, count: 2)])
        assertCodesMatchBitmap(page)
    }

    func testMissingEndMarker() throws {
        let sff = documentHeader() + pageHeader() + line(Self.rowA) + line(Self.rowB)
        let document = try SFFReader.read(sff)
        XCTAssertEqual(document.pages.count, 1)
        XCTAssertEqual(rows(document.pages[0]), [Self.rowA, Self.rowB])
        XCTAssertEqual(document.problems, [.missingEndMarker])
    }

    func testTruncatedMidPageKeepsWhatArrived() throws {
        let complete = documentHeader() + pageHeader() + line(Self.rowA) + pageHeader() + line(Self.rowA) + line(Self.rowB)
        let cut = Array(complete.dropLast(4))  // inside the last line record
        let document = try SFFReader.read(cut)
        XCTAssertEqual(document.pages.count, 2)
        XCTAssertEqual(rows(document.pages[1]), [Self.rowA])
        XCTAssertEqual(document.problems, [.truncated(page: 2)])
        // Cut inside the second page header: page one survives.
        let inHeader = Array(complete.prefix(20 + 18 + line(Self.rowA).count + 5))
        let first = try SFFReader.read(inHeader)
        XCTAssertEqual(first.pages.count, 1)
        XCTAssertEqual(first.problems, [.truncated(page: 2)])
        // A cut two-byte length record.
        let long = documentHeader() + pageHeader() + line(Self.rowA) + [0, 0x20]
        XCTAssertEqual(try SFFReader.read(long).problems, [.truncated(page: 1)])
    }

    func testMultiplePagesWithMixedResolutionAndLongerPageHeader() throws {
        let sff = documentHeader(pages: 2) + pageHeader(fine: false, length: 0x14) + line(Self.rowA) + [0xD9]
            + pageHeader(fine: true) + line(Self.rowB) + end
        let document = try SFFReader.read(sff)
        XCTAssertEqual(document.problems, [])
        XCTAssertEqual(document.pages.map(\.resolution), [.normal, .fine])
        XCTAssertEqual(rows(document.pages[0]), [Self.rowA, Self.white])
        XCTAssertEqual(rows(document.pages[1]), [Self.rowB])
    }

    func testEmptyDocumentAndEmptyPage() throws {
        let empty = try SFFReader.read(documentHeader(pages: 0) + end)
        XCTAssertEqual(empty.pages.count, 0)
        XCTAssertEqual(empty.problems, [.noPages])
        let emptyPage = try SFFReader.read(documentHeader() + pageHeader() + line(Self.rowA) + pageHeader() + end)
        XCTAssertEqual(emptyPage.pages.count, 1)
        XCTAssertEqual(emptyPage.problems, [.emptyPage(page: 2)])
        XCTAssertThrowsError(try SFFReader.read([])) { XCTAssertEqual($0 as? SFFError, .notSFF) }
    }

    func testGarbageThrowsInsteadOfCrashing() throws {
        var generator = SplitMix64(seed: 42)
        let random = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        XCTAssertThrowsError(try SFFReader.read(random)) { XCTAssertEqual($0 as? SFFError, .notSFF) }
        XCTAssertThrowsError(try SFFReader.read(Array("Sfff".utf8))) { XCTAssertEqual($0 as? SFFError, .notSFF) }
        // Valid header, but the first-page offset points at junk and 0x14 holds no page header either.
        let junk = documentHeader(firstPage: 0x30) + random.prefix(100).map { $0 == 0xFE ? 0 : $0 }
        XCTAssertThrowsError(try SFFReader.read(junk)) { XCTAssertEqual($0 as? SFFError, .noPageHeader(offset: 0x30)) }

        // Randomly damaged Ghostscript faxes must never crash; whatever decodes keeps the code/bitmap invariant.
        let dir = try TemporaryDirectory("sff-fuzz")
        let good = try ghostscriptSFF(faxTestPostScript, fine: false, in: dir)
        for round in 0..<150 {
            var damaged = good
            for _ in 0..<(1 + round % 20) {
                let at = 20 + Int(generator.next() % UInt64(damaged.count - 20))
                damaged[at] = UInt8(truncatingIfNeeded: generator.next())
            }
            if round % 3 == 0 { damaged = Array(damaged.prefix(20 + Int(generator.next() % UInt64(damaged.count - 20)))) }
            if let document = try? SFFReader.read(damaged) {
                for page in document.pages where round % 25 == 0 { assertCodesMatchBitmap(page) }
                XCTAssertEqual(document.pages.isEmpty, document.problems.contains(.noPages))
            }
        }
    }
}

/// Small deterministic generator so failures reproduce.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
