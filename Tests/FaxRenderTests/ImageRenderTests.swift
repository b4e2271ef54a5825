import FaxDocument
import Foundation
import TestSupport
import XCTest

@testable import FaxRender

final class ImageRenderTests: XCTestCase {
    /// The box of `boxPostScript` covers x 10–35 %, y 15–40 % from the top of a portrait page.
    func assertBoxTopLeft(_ page: FaxPage, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(page.width, 1728, label, file: file, line: line)
        XCTAssertGreaterThan(blackFraction(page, x: 0.15...0.3, y: 0.2...0.35), 0.9, "\(label): box top-left", file: file, line: line)
        XCTAssertLessThan(blackFraction(page, x: 0.5...1, y: 0.5...1), 0.01, "\(label): bottom-right empty", file: file, line: line)
        XCTAssertLessThan(blackFraction(page, x: 0.5...1, y: 0...0.5), 0.01, "\(label): top-right empty", file: file, line: line)
    }

    func testTIFFsOfEveryKind() async throws {
        let dir = try TemporaryDirectory("render-tiff")
        let box = boxPostScript(width: 595, height: 842)
        let lzwColour = try makeFile(box, device: "tiff24nc", extra: ["-r100", "-sCompression=lzw"], name: "colour.tif", in: dir)
        let grey = try makeFile(box, device: "tiffgray", extra: ["-r150"], name: "grey.tif", in: dir)
        let jpegGrey = dir.url.appendingPathComponent("grey-jpeg.tif")
        try runTool(faxTool("tiffcp"), ["-c", "jpeg", "-r", "16", grey.path, jpegGrey.path])
        let deflate = dir.url.appendingPathComponent("colour-zip.tif")
        try runTool(faxTool("tiffcp"), ["-c", "zip", lzwColour.path, deflate.path])
        XCTAssertTrue(try runTool(faxTool("tiffinfo"), [jpegGrey.path]).stdoutText.contains("JPEG"))

        for (label, url) in [("LZW colour", lzwColour), ("JPEG grey", jpegGrey), ("deflate colour", deflate)] {
            let pages = try await FaxRenderer.render(.tiff(try bytes(url)), options: RenderOptions())
            XCTAssertEqual(pages.count, 1, label)
            assertBoxTopLeft(pages[0], label)
        }

        // Multi-page G4 at 300 dpi (not fax geometry): resampled through the RGBA path.
        let g4 = try makeFile(threePagePostScript, device: "tiffg4", extra: ["-r300"], name: "scan.tif", in: dir)
        let scanned = try await FaxRenderer.render(.tiff(try bytes(g4)), options: RenderOptions())
        XCTAssertEqual(scanned.count, 3)
        for page in scanned { XCTAssertGreaterThan(BilevelImage(page).blackPixels, 5_000) }
        XCTAssertGreaterThan(blackFraction(scanned[1], x: 0.07...0.15, y: 0.86...0.95), 0.95, "landscape scan turned like gs does")

        // G4 already at fax geometry: taken over bit for bit (FaxDocument's TIFFReader fast path).
        let fax = try makeFile(threePagePostScript, device: "tiffg4", extra: ["-r204x196", "-g1728x2292", "-dFIXEDMEDIA", "-dFitPage"],
                               name: "fax.tif", in: dir)
        let exact = try await FaxRenderer.render(.tiff(try bytes(fax)), options: RenderOptions())
        let reference = try TIFFReader.read(path: fax.path)
        XCTAssertEqual(exact, reference)
        XCTAssertEqual(exact.count, 3)
        let normal = try await FaxRenderer.render(.tiff(try bytes(fax)), options: RenderOptions(resolution: .normal))
        XCTAssertEqual(normal.map(\.height), [1146, 1146, 1146])
    }

    func testBrokenTIFFIsRefused() async throws {
        await expectRenderError(.broken) {
            _ = try await FaxRenderer.render(.tiff([0x49, 0x49, 0x2A, 0x00, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3]))
        }
    }

    func testJPEGAndPNGKeepTheBoxTopLeft() async throws {
        let dir = try TemporaryDirectory("render-images")
        let box = boxPostScript(width: 595, height: 842)
        let jpeg = try makeFile(box, device: "jpeg", extra: ["-r72"], name: "box.jpg", in: dir)
        let png = try makeFile(box, device: "png16m", extra: ["-r72"], name: "box.png", in: dir)
        let gif = dir.url.appendingPathComponent("box.gif")
        let ppm = try runTool(faxTool("pngtopnm"), [png.path]).stdout
        let quantized = try runTool(faxTool("pnmquant"), ["16"], stdin: ppm).stdout
        try runTool(faxTool("ppmtogif"), [], stdin: quantized).stdout.write(to: gif)

        for (label, url, mime) in [("JPEG", jpeg, "image/jpeg"), ("PNG", png, "image/png"), ("GIF", gif, "image/gif")] {
            let data = try bytes(url)
            guard case .image = FaxRenderer.detect(mimeType: "application/octet-stream", filename: nil, bytes: data) else {
                XCTFail("\(label) not detected as image")
                continue
            }
            let pages = try await FaxRenderer.render(.image(data, mimeType: mime), options: RenderOptions())
            XCTAssertEqual(pages.count, 1, label)
            assertBoxTopLeft(pages[0], label)
        }

        // A landscape picture is turned: its top-left box lands bottom-left.
        let wide = try makeFile(boxPostScript(width: 842, height: 595), device: "png16m", extra: ["-r72"], name: "wide.png", in: dir)
        let turned = try await FaxRenderer.render(.image(try bytes(wide), mimeType: "image/png"), options: RenderOptions(resolution: .normal))
        XCTAssertEqual(turned[0].height, 1146)
        XCTAssertGreaterThan(blackFraction(turned[0], x: 0.2...0.35, y: 0.7...0.85), 0.9)
        XCTAssertLessThan(blackFraction(turned[0], x: 0...1, y: 0...0.4), 0.01)
    }

    func testJPEGExifOrientationIsApplied() async throws {
        let dir = try TemporaryDirectory("render-exif")
        // Stored landscape with the box top-left; EXIF 6 says "turn clockwise to view": then the box is top-right
        // of a portrait picture, which needs no further turn.
        let stored = try bytes(try makeFile(boxPostScript(width: 842, height: 595), device: "jpeg", extra: ["-r72"], name: "wide.jpg", in: dir))
        var exif: [UInt8] = Array("Exif".utf8) + [0, 0] + Array("MM".utf8) + [0, 0x2A, 0, 0, 0, 8]
        exif += [0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]
        let app1 = [0xFF, 0xE1, UInt8((exif.count + 2) >> 8), UInt8((exif.count + 2) & 0xFF)] + exif
        let rotated = Array(stored.prefix(2)) + app1 + Array(stored.dropFirst(2))
        XCTAssertEqual(ImageHeader.jpegOrientation(rotated), 6)
        XCTAssertEqual(ImageHeader.jpegOrientation(stored), 1)

        let plain = try await FaxRenderer.render(.image(stored, mimeType: "image/jpeg"))[0]
        XCTAssertGreaterThan(blackFraction(plain, x: 0.2...0.35, y: 0.7...0.85), 0.9, "no EXIF: turned counterclockwise")
        let upright = try await FaxRenderer.render(.image(rotated, mimeType: "image/jpeg"))[0]
        XCTAssertGreaterThan(blackFraction(upright, x: 0.65...0.8, y: 0.15...0.3), 0.9, "EXIF 6: turned clockwise")
        XCTAssertLessThan(blackFraction(upright, x: 0...0.5, y: 0...1), 0.01)
    }

    func testPhotoIsDitheredNotThresholded() async throws {
        let dir = try TemporaryDirectory("render-photo")
        // A smooth grey ramp: thresholding would give one hard edge, dithering a gradient of dot density.
        let ramp = "%!PS\n<< /PageSize [595 842] >> setpagedevice 0 1 594 { dup 594 div setgray 0 1 842 rectfill } for showpage\n"
        let jpeg = try makeFile(ramp, device: "jpeggray", extra: ["-r50"], name: "ramp.jpg", in: dir)
        let page = try await FaxRenderer.render(.image(try bytes(jpeg), mimeType: "image/jpeg"))[0]
        let dark = blackFraction(page, x: 0.05...0.15, y: 0.1...0.9)
        let middle = blackFraction(page, x: 0.45...0.55, y: 0.1...0.9)
        let light = blackFraction(page, x: 0.85...0.95, y: 0.1...0.9)
        XCTAssertGreaterThan(dark, middle)
        XCTAssertGreaterThan(middle, light)
        XCTAssertEqual(middle, 0.5, accuracy: 0.15)
    }

    func testPNGBombIsRefusedFromItsHeader() async throws {
        // IHDR claiming 50000 × 50000 RGB with a valid CRC, then an empty IDAT and IEND: 57 bytes.
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            let length = UInt32(data.count), crc = crc32(body)
            return [24, 16, 8, 0].map { UInt8((length >> $0) & 0xFF) } + body + [24, 16, 8, 0].map { UInt8((crc >> $0) & 0xFF) }
        }
        let side: UInt32 = 50_000
        let size = [24, 16, 8, 0].map { UInt8((side >> $0) & 0xFF) }
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", size + size + [8, 2, 0, 0, 0])
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
        XCTAssertLessThan(png.count, 100)
        let error = await expectRenderError(.tooLarge) { _ = try await FaxRenderer.render(.image(png, mimeType: "image/png")) }
        XCTAssertEqual(error?.description, "image of 50000 × 50000 pixels exceeds the limit of 100000000 pixels")

        // The same check guards TIFFs, before any strip is decoded.
        let dir = try TemporaryDirectory("render-bomb")
        let small = try makeFile(boxPostScript(width: 100, height: 100), device: "tiffgray", extra: ["-r72"], name: "s.tif", in: dir)
        let smallBytes = try bytes(small)
        let large = await expectRenderError(.tooLarge) {
            _ = try await FaxRenderer.render(.tiff(smallBytes), options: RenderOptions(maxPixels: 5_000))
        }
        XCTAssertTrue(large?.description.contains("100 × 100") ?? false)
    }

    func testDetect() throws {
        let zip: [UInt8] = [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00] + Array(repeating: 0, count: 40)
        XCTAssertNil(FaxRenderer.detect(mimeType: "application/zip", filename: "a.zip", bytes: zip))
        XCTAssertNil(FaxRenderer.detect(
            mimeType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", filename: "Brief.docx", bytes: zip))
        XCTAssertNil(FaxRenderer.detect(mimeType: "application/octet-stream", filename: "Brief.docx", bytes: zip))
        XCTAssertNil(FaxRenderer.detect(mimeType: "application/msword", filename: "a.doc", bytes: [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1]))
        XCTAssertNil(FaxRenderer.detect(mimeType: "text/plain", filename: "x.txt", bytes: [0x41, 0x00, 0x42]))
        XCTAssertNil(FaxRenderer.detect(mimeType: "application/octet-stream", filename: "blob.bin", bytes: [1, 2, 3]))

        let pdf = Array("%PDF-1.7\n...".utf8)
        XCTAssertEqual(FaxRenderer.detect(mimeType: "application/octet-stream", filename: "scan.txt", bytes: pdf), .pdf(pdf))
        XCTAssertEqual(FaxRenderer.detect(mimeType: "application/pdf", filename: nil, bytes: pdf), .pdf(pdf))
        let ps = Array("%!PS-Adobe-3.0\n".utf8)
        XCTAssertEqual(FaxRenderer.detect(mimeType: "application/postscript", filename: nil, bytes: ps), .postScript(ps))
        let tiff: [UInt8] = [0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8]
        XCTAssertEqual(FaxRenderer.detect(mimeType: "image/tiff", filename: nil, bytes: tiff), .tiff(tiff))
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]
        XCTAssertEqual(FaxRenderer.detect(mimeType: "application/octet-stream", filename: "x", bytes: png), .image(png, mimeType: "image/png"))
        XCTAssertEqual(FaxRenderer.detect(mimeType: "text/plain; charset=utf-8", filename: nil, bytes: Array("Grüße".utf8)), .text("Grüße"))
        XCTAssertEqual(FaxRenderer.detect(mimeType: "text/plain", filename: nil, bytes: [0x47, 0x72, 0xFC, 0xDF, 0x65]), .text("Grüße"))
        XCTAssertEqual(FaxRenderer.detect(mimeType: "text/plain; charset=\"windows-1252\"", filename: nil, bytes: [0x80, 0x20, 0x35]), .text("€ 5"))
        XCTAssertEqual(FaxRenderer.detect(mimeType: "application/octet-stream", filename: "page.HTML", bytes: Array("<p>x</p>".utf8)),
                       .html("<p>x</p>"))
        // Claimed PDF without the magic: still handed to Ghostscript, which will call it broken.
        XCTAssertEqual(FaxRenderer.detect(mimeType: "application/pdf", filename: "x.pdf", bytes: [1, 2]), .pdf([1, 2]))
    }
}

func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
