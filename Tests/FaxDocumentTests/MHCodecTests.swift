import CTIFF
import FaxDocument
import Foundation
import TestSupport
import XCTest

final class MHCodecTests: XCTestCase {
    func testAllWhiteLineIsB25901() throws {
        let white = [UInt8](repeating: 0, count: 216)
        XCTAssertEqual(MHCodec.encodeLine(white, width: 1728), [0xB2, 0x59, 0x01])
        XCTAssertEqual(try MHCodec.decodeLine([0xB2, 0x59, 0x01], width: 1728), white)
    }

    /// Row r of the "all runs" image: white run r, black run 2561 - r, white 5. Covers white 0...2560 and black 1...2561.
    static let allRunsWidth = 2566
    static func allRunsRow(_ r: Int) -> [UInt8] {
        var row = [UInt8](repeating: 0, count: (allRunsWidth + 7) / 8)
        for x in r..<2561 { row[x >> 3] |= 0x80 >> UInt8(x & 7) }
        return row
    }

    func testEveryRunLengthRoundTripsBothColours() throws {
        for r in 0...2560 {
            let row = Self.allRunsRow(r)
            let code = MHCodec.encodeLine(row, width: Self.allRunsWidth)
            XCTAssertEqual(try MHCodec.decodeLine(code, width: Self.allRunsWidth), row, "run \(r)")
        }
        // Black runs starting at 0 pixels from a white 0 run, and white runs up to 2560 next to a short black run.
        for r in 0...2560 {
            let width = r + 2
            var row = [UInt8](repeating: 0, count: (width + 7) / 8)
            for x in 0..<r { row[x >> 3] |= 0x80 >> UInt8(x & 7) }  // black run r first, then white 2
            XCTAssertEqual(try MHCodec.decodeLine(MHCodec.encodeLine(row, width: width), width: width), row, "black-first run \(r)")
        }
        // Runs longer than 2560 need repeated make-up codes.
        for width in [2561, 2624, 5120, 5121, 7000] {
            let white = [UInt8](repeating: 0, count: (width + 7) / 8)
            var black = [UInt8](repeating: 0xFF, count: (width + 7) / 8)
            if width % 8 != 0 { black[black.count - 1] = 0xFF << UInt8(8 - width % 8) }
            XCTAssertEqual(try MHCodec.decodeLine(MHCodec.encodeLine(white, width: width), width: width), white)
            XCTAssertEqual(try MHCodec.decodeLine(MHCodec.encodeLine(black, width: width), width: width), black)
        }
    }

    func testCodeLengthsMatchT4ForKnownRuns() {
        // Hand-computed from T.4: white 1728 make-up 010011011 + white 0 00110101 (above); white 64+1 = 11011 + 000111,
        // black 3 = 10: a 70-pixel line "white 65, black 3, white 2" is 11011 000111 10 0111 -> LSB-first bytes.
        var row = [UInt8](repeating: 0, count: 9)
        for x in 65..<68 { row[x >> 3] |= 0x80 >> UInt8(x & 7) }
        let bits = "11011" + "000111" + "10" + "0111"
        var expected = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (i, ch) in bits.enumerated() where ch == "1" { expected[i / 8] |= 1 << UInt8(i % 8) }
        XCTAssertEqual(MHCodec.encodeLine(row, width: 70), expected)
    }

    func testDecoderRejectsGarbageAndTruncation() {
        XCTAssertThrowsError(try MHCodec.decodeLine([0x00, 0x80], width: 1728))  // 15 zero bits then 1: no code
        XCTAssertThrowsError(try MHCodec.decodeLine([0xB2, 0x59], width: 1728))  // make-up 1728 without terminating code
        XCTAssertThrowsError(try MHCodec.decodeLine([0xB2, 0x59, 0x01], width: 1000)) { error in
            XCTAssertEqual(error as? MHError, .lengthMismatch(expected: 1000, actual: 1728))
        }
        // Black terminating 0 (0000110111) is valid: white 10 (00111), black 0, white 6 (1110) makes 16 pixels.
        let bits = "00111" + "0000110111" + "1110"
        var code = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (i, ch) in bits.enumerated() where ch == "1" { code[i / 8] |= 1 << UInt8(i % 8) }
        XCTAssertEqual(try MHCodec.decodeLine(code, width: 16), [0, 0])
    }

    func testLeadingEOLIsTolerated() throws {
        // EOL (11 zeros, 1) plus 3 fill zeros, then the white line: bits are LSB-first, so the EOL's 1 is bit 14.
        let bits = "00000000000000" + "1" + "010011011" + "00110101"
        var code = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (i, ch) in bits.enumerated() where ch == "1" { code[i / 8] |= 1 << UInt8(i % 8) }
        XCTAssertEqual(try MHCodec.decodeLine(code, width: 1728), [UInt8](repeating: 0, count: 216))
        // An EOL in the middle of a line is still an error.
        let middle = "0111" + "000000000001" + "010011011" + "00110101"
        var bad = [UInt8](repeating: 0, count: (middle.count + 7) / 8)
        for (i, ch) in middle.enumerated() where ch == "1" { bad[i / 8] |= 1 << UInt8(i % 8) }
        XCTAssertThrowsError(try MHCodec.decodeLine(bad, width: 1730))
    }

    // MARK: Independent check of the code tables against libtiff's CCITT RLE codec (MH, byte-aligned rows).

    func testOurCodesDecodeWithLibtiff() throws {
        let dir = try TemporaryDirectory("mh-libtiff")
        let path = dir.url.appendingPathComponent("ours.tif").path
        let rows = (0...2560).map(Self.allRunsRow)
        let tiff = try XCTUnwrap(TIFFOpen(path, "w"))
        setRLETags(tiff, height: rows.count)
        for (i, row) in rows.enumerated() {
            var code = MHCodec.encodeLine(row, width: Self.allRunsWidth)
            XCTAssertEqual(code.withUnsafeMutableBytes { TIFFWriteRawStrip(tiff, UInt32(i), $0.baseAddress, tmsize_t($0.count)) }, tmsize_t(code.count))
        }
        TIFFClose(tiff)
        let pages = try TIFFReader.read(path: path)
        XCTAssertEqual(pages.count, 1)
        XCTAssertEqual(pages[0].bitmap, rows.flatMap { $0 }, "libtiff decodes our MH codes to the same pixels")
    }

    func testLibtiffCodesDecodeWithOursBitExact() throws {
        let dir = try TemporaryDirectory("mh-libtiff")
        let path = dir.url.appendingPathComponent("libtiff.tif").path
        let rows = (0...2560).map(Self.allRunsRow)
        let writer = try XCTUnwrap(TIFFOpen(path, "w"))
        setRLETags(writer, height: rows.count)
        for (i, row) in rows.enumerated() {
            var copy = row
            XCTAssertEqual(copy.withUnsafeMutableBytes { TIFFWriteScanline(writer, $0.baseAddress, UInt32(i), 0) }, 1)
        }
        TIFFClose(writer)
        let reader = try XCTUnwrap(TIFFOpen(path, "r"))
        defer { TIFFClose(reader) }
        XCTAssertEqual(Int(TIFFNumberOfStrips(reader)), rows.count)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for (i, row) in rows.enumerated() {
            let n = buffer.withUnsafeMutableBytes { TIFFReadRawStrip(reader, UInt32(i), $0.baseAddress, tmsize_t($0.count)) }
            let code = Array(buffer[0..<Int(n)])
            XCTAssertEqual(try MHCodec.decodeLine(code, width: Self.allRunsWidth), row, "libtiff row \(i)")
            XCTAssertEqual(code, MHCodec.encodeLine(row, width: Self.allRunsWidth), "same code bits as libtiff for row \(i)")
        }
    }

    private func setRLETags(_ tiff: OpaquePointer, height: Int) {
        _ = faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(Self.allRunsWidth))
        _ = faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), UInt32(height))
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), 1)
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1)
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISWHITE))
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_CCITTRLE))
        // LSB-first fill order is SFF's bit order, so the raw strips are exactly SFF line records.
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_FILLORDER), UInt16(FILLORDER_LSB2MSB))
        _ = faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_ROWSPERSTRIP), 1)
    }
}
