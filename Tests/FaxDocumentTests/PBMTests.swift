import FaxDocument
import XCTest

final class PBMTests: XCTestCase {
    func testRoundTripAndCommentsInHeader() throws {
        let bitmap: [UInt8] = [0b1010_0000, 0b0110_0000, 0xFF, 0xE0]  // 11 x 2, last 5 bits of each row unused
        let written = PBM.write(width: 11, height: 2, bitmap: bitmap)
        let read = try PBM.read(written)
        XCTAssertEqual(read.width, 11)
        XCTAssertEqual(read.height, 2)
        XCTAssertEqual(read.bitmap, bitmap)
        // sfftobmp writes a comment line between magic and size.
        let commented = Array("P4\n# generated with sfftobmp\n11 2\n".utf8) + bitmap
        XCTAssertEqual(try PBM.read(commented).bitmap, bitmap)
        let page = try PBM.readPage(commented, resolution: .normal)
        XCTAssertTrue(page.isBlack(x: 0, y: 0))
        XCTAssertFalse(page.isBlack(x: 1, y: 0))
        XCTAssertTrue(page.isBlack(x: 10, y: 1))
        XCTAssertEqual(page.mhLines.count, 2)
        XCTAssertThrowsError(try PBM.read(Array("P1\n1 1\n1".utf8))) { XCTAssertEqual($0 as? PBMError, .notP4) }
        XCTAssertThrowsError(try PBM.read(Array(written.dropLast()))) {
            XCTAssertEqual($0 as? PBMError, .truncated(expected: 4, actual: 3))
        }
    }
}
