import CTIFF
import FaxDocument
import Foundation
import TestSupport
import XCTest

final class TIFFWriterTests: XCTestCase {
    func testG3AndG4MultiPageFaxTIFF() throws {
        let dir = try TemporaryDirectory("tiff")
        let fine = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: true, in: dir)).pages
        let normal = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: false, in: dir)).pages
        for (compression, name) in [(TIFFWriter.Compression.g3, "CCITT Group 3"), (.g4, "CCITT Group 4")] {
            for pages in [fine, normal] {
                let path = dir.url.appendingPathComponent("fax-\(name.suffix(1))-\(pages[0].resolution).tif").path
                try TIFFWriter.write(pages, to: path, compression: compression)
                let info = try runTool(faxTool("tiffinfo"), [path]).stdoutText
                XCTAssertEqual(info.components(separatedBy: "TIFF Directory at offset").count - 1, 3, info)
                XCTAssertEqual(info.components(separatedBy: "Compression Scheme: \(name)\n").count - 1, 3, info)
                XCTAssertEqual(info.components(separatedBy: "Photometric Interpretation: min-is-white").count - 1, 3)
                XCTAssertEqual(info.components(separatedBy: "Image Width: 1728 Image Length: \(pages[0].height)").count - 1, 3)
                let lpi = pages[0].resolution == .fine ? 196 : 98
                XCTAssertEqual(info.components(separatedBy: "Resolution: 204, \(lpi) pixels/inch").count - 1, 3, info)
                XCTAssertTrue(info.contains("Page Number: 0-3") && info.contains("Page Number: 2-3"), info)
                XCTAssertTrue(info.contains("Subfile Type: multi-page document"), info)
                if compression == .g3 { XCTAssertTrue(info.contains("Group 3 Options: EOL padding"), info) }

                // libtiff decodes it back to the same pages.
                XCTAssertEqual(try TIFFReader.read(path: path), pages)
                // tiffcp's uncompressed copy (a separate decode and re-encode) still holds the same pixels.
                let plain = dir.url.appendingPathComponent("plain.tif").path
                try runTool(faxTool("tiffcp"), ["-c", "none", path, plain])
                XCTAssertTrue(try runTool(faxTool("tiffinfo"), [plain]).stdoutText.contains("Compression Scheme: None"))
                XCTAssertEqual(try TIFFReader.read(path: plain), pages)
            }
        }
    }

    func testReaderInvertsMinIsBlackAndRejectsNonTIFF() throws {
        let dir = try TemporaryDirectory("tiff")
        // A TIFF from another writer (Ghostscript's tiffg4 device) reads to Ghostscript's own raster.
        let ps = dir.url.appendingPathComponent("p.ps")
        try faxTestPostScript.write(to: ps, atomically: true, encoding: .utf8)
        let tif = dir.url.appendingPathComponent("gs.tif").path
        try runTool(faxTool("gs"), ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4", "-r204x196", "-sOutputFile=\(tif)", ps.path])
        let gsPages = try TIFFReader.read(path: tif)
        let reference = try ghostscriptPBM(faxTestPostScript, resolution: "204x196", in: dir)
        XCTAssertEqual(gsPages.count, 3)
        for (page, ref) in zip(gsPages, reference) {
            XCTAssertEqual(page.resolution, .fine)
            // gs's fax TIFF devices widen A4 (1687 dots) to 1728; compareImages treats the white margin as equal.
            XCTAssertEqual(page.width, 1728)
            XCTAssertEqual(compareImages(BilevelImage(page), ref).differing, 0)
        }
        // A min-is-black file (0 = black) holding the same first page must read to the same black pixels.
        let inverted = dir.url.appendingPathComponent("inv.tif").path
        try writeMinIsBlack(gsPages[0], to: inverted)
        XCTAssertTrue(try runTool(faxTool("tiffinfo"), [inverted]).stdoutText.contains("min-is-black"))
        XCTAssertEqual(try TIFFReader.read(path: inverted), [gsPages[0]])

        let junk = dir.url.appendingPathComponent("junk.tif")
        try Data("not a tiff".utf8).write(to: junk)
        XCTAssertThrowsError(try TIFFReader.read(path: junk.path))
        XCTAssertThrowsError(try TIFFWriter.write([], to: dir.url.appendingPathComponent("empty.tif").path, compression: .g4))
    }

    private func writeMinIsBlack(_ page: FaxPage, to path: String) throws {
        let tiff = try XCTUnwrap(TIFFOpen(path, "w"))
        defer { TIFFClose(tiff) }
        _ = faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(page.width))
        _ = faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), UInt32(page.height))
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), 1)
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1)
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK))
        _ = faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_NONE))
        _ = faxgate_tiff_set_float(tiff, UInt32(TIFFTAG_YRESOLUTION), 196)
        for y in 0..<page.height {
            var row = page.bitmap[(y * page.rowBytes)..<((y + 1) * page.rowBytes)].map { ~$0 }
            XCTAssertEqual(row.withUnsafeMutableBytes { TIFFWriteScanline(tiff, $0.baseAddress, UInt32(y), 0) }, 1)
        }
    }
}
