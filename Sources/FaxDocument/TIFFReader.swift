// Reads any bilevel TIFF (fax TIFFs, scans) into fax pages through libtiff.
import CTIFF

public enum TIFFReader {
    /// Reads every page (directory) of a bilevel TIFF. Resolution: at least 150 lines per inch counts as fine.
    public static func read(path: String) throws(TIFFError) -> [FaxPage] {
        faxgate_tiff_silence()
        guard let tiff = TIFFOpen(path, "r") else { throw TIFFError("cannot open \(path) as TIFF") }
        defer { TIFFClose(tiff) }
        var pages: [FaxPage] = []
        repeat {
            var width: UInt32 = 0, height: UInt32 = 0
            var bits: UInt16 = 1, samples: UInt16 = 1, photometric: UInt16 = UInt16(PHOTOMETRIC_MINISWHITE)
            var unit: UInt16 = UInt16(RESUNIT_INCH)
            var yres: Float = 0
            guard faxgate_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), &width) == 1,
                faxgate_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), &height) == 1, width > 0
            else { throw TIFFError("page \(pages.count + 1) has no image size") }
            _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)
            _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), &samples)
            guard bits == 1, samples == 1 else { throw TIFFError("page \(pages.count + 1) is not bilevel") }
            guard TIFFIsTiled(tiff) == 0 else { throw TIFFError("tiled TIFF is not supported") }
            _ = faxgate_tiff_get_u16(tiff, UInt32(TIFFTAG_PHOTOMETRIC), &photometric)
            _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_RESOLUTIONUNIT), &unit)
            if faxgate_tiff_get_float(tiff, UInt32(TIFFTAG_YRESOLUTION), &yres) != 1 { yres = 196 }
            let lpi = unit == UInt16(RESUNIT_CENTIMETER) ? Double(yres) * 2.54 : Double(yres)

            let rowBytes = (Int(width) + 7) / 8
            let scanlineSize = max(Int(TIFFScanlineSize(tiff)), rowBytes)
            var line = [UInt8](repeating: 0, count: scanlineSize)
            var bitmap = [UInt8](repeating: 0, count: rowBytes * Int(height))
            let invert = photometric == UInt16(PHOTOMETRIC_MINISBLACK)
            for y in 0..<Int(height) {
                let status = line.withUnsafeMutableBytes { TIFFReadScanline(tiff, $0.baseAddress, UInt32(y), 0) }
                guard status == 1 else { throw TIFFError("page \(pages.count + 1): row \(y) unreadable") }
                for i in 0..<rowBytes { bitmap[y * rowBytes + i] = invert ? ~line[i] : line[i] }
            }
            pages.append(FaxPage(bitmap: bitmap, width: Int(width), height: Int(height), resolution: lpi >= 150 ? .fine : .normal))
        } while TIFFReadDirectory(tiff) == 1
        return pages
    }
}
