// TIFF of any compression and colour model through libtiff's RGBA interface, page by page.
// Bilevel pages already at fax width go through FaxDocument's TIFFReader untouched (no resampling).
import CTIFF
import FaxDocument
import Foundation

enum TIFFRenderer {
    /// Blocking: every page (directory) of a TIFF as fax pages.
    static func render(_ bytes: [UInt8], options: RenderOptions) throws(RenderError) -> [FaxPage] {
        let work = try WorkDirectory()
        let path = try work.write("input.tif", bytes)
        faxgate_tiff_silence()
        guard let tiff = TIFFOpen(path, "r") else { throw RenderError(.broken, "the TIFF file cannot be opened") }
        defer { TIFFClose(tiff) }

        // First pass over the directories: sizes (bomb guard) and whether the fast path applies.
        var directories = 0
        var allFaxBilevel = true
        repeat {
            directories += 1
            guard directories <= options.maxPages else {
                throw RenderError(.tooManyPages, "the TIFF has more than \(options.maxPages) pages")
            }
            var width: UInt32 = 0, height: UInt32 = 0, bits: UInt16 = 1, samples: UInt16 = 1
            guard faxgate_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), &width) == 1,
                faxgate_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), &height) == 1, width > 0, height > 0
            else { throw RenderError(.broken, "page \(directories) of the TIFF has no image size") }
            try ImageRenderer.checkPixels(width: Int(width), height: Int(height), options: options)
            _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)
            _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), &samples)
            let dpi = resolution(tiff)
            let faxLike = bits == 1 && samples == 1 && TIFFIsTiled(tiff) == 0
                && width == UInt32(FaxPage.standardWidth) && dpi.map { abs($0.x - 204) < 8 } ?? false
                && Int(height) <= options.paper.rows(.fine) + 64
            if !faxLike { allFaxBilevel = false }
        } while TIFFReadDirectory(tiff) == 1

        if allFaxBilevel, let pages = try? TIFFReader.read(path: path) {
            return pages.map { adapt($0, to: options) }
        }

        guard TIFFSetDirectory(tiff, 0) == 1 else { throw RenderError(.broken, "the TIFF's first page cannot be read") }
        var pages: [FaxPage] = []
        for index in 0..<directories {
            if index > 0 && TIFFReadDirectory(tiff) != 1 {
                throw RenderError(.broken, "page \(index + 1) of the TIFF cannot be read")
            }
            let image = try greyImage(tiff, page: index + 1)
            pages.append(PagePlacement.page(from: image, options: options))
        }
        return pages
    }

    /// A fax-width page at the other vertical resolution: rows doubled, or pairs of rows merged so thin
    /// horizontal lines survive.
    static func adapt(_ page: FaxPage, to options: RenderOptions) -> FaxPage {
        if page.resolution == options.resolution { return page }
        if options.resolution == .fine { return page.fineResolution() }
        let rowBytes = page.rowBytes, rows = (page.height + 1) / 2
        var bits = [UInt8](repeating: 0, count: rowBytes * rows)
        for y in 0..<page.height {
            for i in 0..<rowBytes { bits[(y / 2) * rowBytes + i] |= page.bitmap[y * rowBytes + i] }
        }
        return FaxPage(bitmap: bits, width: page.width, height: rows, resolution: .normal)
    }

    static func resolution(_ tiff: OpaquePointer) -> (x: Double, y: Double)? {
        var x: Float = 0, y: Float = 0, unit: UInt16 = UInt16(RESUNIT_INCH)
        guard faxgate_tiff_get_float(tiff, UInt32(TIFFTAG_XRESOLUTION), &x) == 1,
            faxgate_tiff_get_float(tiff, UInt32(TIFFTAG_YRESOLUTION), &y) == 1, x > 0, y > 0
        else { return nil }
        _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_RESOLUTIONUNIT), &unit)
        if unit == UInt16(RESUNIT_NONE) { return nil }
        let factor = unit == UInt16(RESUNIT_CENTIMETER) ? 2.54 : 1
        return (Double(x) * factor, Double(y) * factor)
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The current directory as grey, read in bands of rows so only the grey copy is ever whole in memory.
    static func greyImage(_ tiff: OpaquePointer, page: Int) throws(RenderError) -> GreyImage {
        var message = [CChar](repeating: 0, count: 1024)
        guard TIFFRGBAImageOK(tiff, &message) == 1 else {
            throw RenderError(.unsupported, "page \(page) of the TIFF: \(text(message))")
        }
        var image = TIFFRGBAImage()
        guard TIFFRGBAImageBegin(&image, tiff, 0, &message) == 1 else {
            throw RenderError(.broken, "page \(page) of the TIFF: \(text(message))")
        }
        defer { TIFFRGBAImageEnd(&image) }
        image.req_orientation = UInt16(ORIENTATION_TOPLEFT)
        let width = Int(image.width), height = Int(image.height)
        var bits: UInt16 = 8
        _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)

        var grey = [UInt8](repeating: 255, count: width * height)
        let band = max(1, min(height, 4_194_304 / max(1, width)))
        var raster = [UInt32](repeating: 0, count: width * band)
        var y = 0
        while y < height {
            let rows = min(band, height - y)
            image.row_offset = Int32(y)
            image.col_offset = 0
            let ok = raster.withUnsafeMutableBufferPointer { TIFFRGBAImageGet(&image, $0.baseAddress, UInt32(width), UInt32(rows)) }
            guard ok == 1 else { throw RenderError(.broken, "page \(page) of the TIFF: rows from \(y) cannot be decoded") }
            for i in 0..<(rows * width) {
                let pixel = raster[i]
                // ABGR in a uint32 (R lowest byte); transparent areas count as white paper.
                let r = Int(pixel & 0xFF), g = Int((pixel >> 8) & 0xFF), b = Int((pixel >> 16) & 0xFF), a = Int(pixel >> 24)
                let luma = (r * 299 + g * 587 + b * 114) / 1000
                grey[y * width + i] = UInt8((luma * a + 255 * (255 - a)) / 255)
            }
            y += rows
        }
        return GreyImage(width: width, height: height, pixels: grey, dpi: resolution(tiff), bilevel: bits == 1)
    }
}
