import FaxDocument
import FaxgateCore
@testable import FaxgateWeb
import Foundation
import Hummingbird
import TestSupport
import XCTest

/// The pieces of the user pages that decide something on their own: the number field's grammar, the upload's
/// type by content, byte ranges, thumbnails (read back by netpbm's PNG decoder), download names.
final class UserPagesUnitTests: XCTestCase {
    let plan = NumberPlan(LineConfig(countryCode: "49", areaCode: "30"))

    /// A browser's GET form sends "030 12" as `q=030+12`: the search must see the space.
    func testSearchQuery_decodesPlusAsSpace() {
        let request = Request(head: .init(method: .get, scheme: "http", authority: "x", path: "/inbox?q=030+12%3A&kind=fax"), body: .init(buffer: .init()))
        XCTAssertEqual(UserPage.query(request, "q"), "030 12:")
        XCTAssertEqual(UserPage.query(request, "kind"), "fax")
        XCTAssertNil(UserPage.query(request, "from"))
    }

    func testNumberField_followsMailAddressing() {
        XCTAssertEqual(try WebNumber.parse("030 1234567", plan: plan).get(), "+49301234567")
        XCTAssertEqual(try WebNumber.parse("030-1234567", plan: plan).get(), "+49301234567")
        XCTAssertEqual(try WebNumber.parse("+49 (0)30 1234567", plan: plan).get(), "+49301234567")
        // A page count after the number is never merged into it.
        guard case .failure(.digitsAfterNumber(let number, let following)) = WebNumber.parse("030 1234567 3", plan: plan) else {
            return XCTFail("030 1234567 3 accepted")
        }
        XCTAssertEqual(number, "030 1234567")
        XCTAssertEqual(following, "3")
        guard case .failure(.number(.notASCII(_, let scalar))) = WebNumber.parse("030\u{200B}1234567", plan: plan) else {
            return XCTFail("a zero-width space accepted")
        }
        XCTAssertEqual(scalar, 0x200B)
        XCTAssertTrue(WebNumber.parse("030\u{200B}1234567", plan: plan).failureText.contains("U+200B (ZERO WIDTH SPACE)"))
        for bad in ["030 123 45 67", "030 1234567 - 3", "٠٣٠١٢٣٤٥٦٧", "0301234567x", ""] {
            XCTAssertNil(try? WebNumber.parse(bad, plan: plan).get(), bad)
        }
        XCTAssertTrue(WebNumber.parse("030 1234567 3", plan: plan).failureText(language: "de").contains("weitere Ziffern"))
    }

    func testUploadType_isReadFromTheBytes() {
        XCTAssertEqual(WebUpload.contentType(of: Array("%PDF-1.4\n…".utf8)), "application/pdf")
        XCTAssertEqual(WebUpload.contentType(of: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 30)), "image/png")
        XCTAssertEqual(WebUpload.contentType(of: Array("Sehr geehrte Damen und Herren,\nbitte …\n".utf8)), "text/plain; charset=utf-8")
        XCTAssertNil(WebUpload.contentType(of: [0x50, 0x4B, 0x03, 0x04, 1, 2, 3]), "a ZIP (docx) is not faxed")
        XCTAssertNil(WebUpload.contentType(of: [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0]), "an ELF binary is not text")
        XCTAssertNil(WebUpload.contentType(of: [0xFF, 0xFE, 0x41, 0x00]), "not UTF-8")
    }

    func testByteRanges() {
        XCTAssertEqual(RangedBody.parse("bytes=0-", size: 100), 0..<100)
        XCTAssertEqual(RangedBody.parse("bytes=10-19", size: 100), 10..<20)
        XCTAssertEqual(RangedBody.parse("bytes=90-500", size: 100), 90..<100)
        XCTAssertEqual(RangedBody.parse("bytes=-5", size: 100), 95..<100)
        XCTAssertNil(RangedBody.parse("bytes=100-", size: 100))
        XCTAssertNil(RangedBody.parse("bytes=20-10", size: 100))
        XCTAssertNil(RangedBody.parse("bytes=0-1,5-6", size: 100))
        XCTAssertNil(RangedBody.parse("items=0-1", size: 100))
        XCTAssertNil(RangedBody.parse("bytes=-0", size: 100))
        XCTAssertNil(RangedBody.parse("bytes=99999999999999999999-", size: 100))
    }

    func testThumbnail_isAPNGThatNetpbmReads_withTheDrawingWhereItWas() throws {
        // A normal-resolution page (1728 × 1100 rows = A4) with a black block in the top left quarter.
        let width = 1728, height = 1100, rowBytes = width / 8
        var bitmap = [UInt8](repeating: 0, count: rowBytes * height)
        for y in 0..<(height / 4) { for x in 0..<(rowBytes / 4) { bitmap[y * rowBytes + x] = 0xFF } }
        let page = FaxPage(bitmap: bitmap, width: width, height: height, resolution: .normal)
        let png = FaxThumbnail.png(page, width: 200)
        let dir = try TemporaryDirectory("thumb")
        try Data(png).write(to: URL(fileURLWithPath: dir.path + "/t.png"))
        let pgm = try runTool("pngtopnm", [dir.path + "/t.png"]).stdout
        // "P5\n200 283\n255\n" then the pixels.
        let text = String(decoding: pgm.prefix(20), as: UTF8.self)
        let fields = text.split(whereSeparator: { $0 == "\n" || $0 == " " }).prefix(4).map(String.init)
        XCTAssertEqual(fields[0], "P5")
        XCTAssertEqual(fields[1], "200")
        let h = try XCTUnwrap(Int(fields[2]))
        XCTAssertEqual(Double(h), 200 * (1100.0 / 98) / (1728.0 / 204), accuracy: 1, "physical aspect ratio kept")
        let pixels = Array(pgm.suffix(200 * h))
        XCTAssertEqual(pixels[10 * 200 + 10], 0, "inside the block: black")
        XCTAssertEqual(pixels[(h - 10) * 200 + 190], 255, "outside: white")
    }

    func testDownloadNames_arePlainASCII() {
        XCTAssertEqual(safeFilename("fax-+49301234567-20261201.pdf", fallback: "x"), "fax-_49301234567-20261201.pdf")
        XCTAssertEqual(safeFilename("\"; filename=../../etc/passwd\r\n", fallback: "x.pdf"), "filename_.._.._etc_passwd")
        XCTAssertEqual(safeFilename("Müller.pdf", fallback: "x"), "M_ller.pdf")
        XCTAssertEqual(safeFilename("…", fallback: "fax-1.pdf"), "fax-1.pdf")
    }
}

extension Result where Failure == WebNumber.Problem {
    var failureText: String { failureText(language: "en") }
    func failureText(language: String) -> String {
        if case .failure(let problem) = self { return problem.text(language) }
        return ""
    }
}
