// Reads one page back from the TIFF spandsp writes while receiving, bounded (the remote chose its size).
import CTIFF
import FaxDocument
#if canImport(Glibc)
import Glibc
#endif

enum FileManagerLite {
    static func remove(_ path: String) throws { _ = unlink(path) }
}

extension String {
    func trimmingSpaces() -> Substring {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

extension FaxEngine {
    /// Page `index` (0-based) of a bilevel TIFF. spandsp has written its directory before the phase D callback
    /// (t4_rx_end_page → TIFFWriteDirectory), and libtiff writes straight to the file, so a second handle sees it.
    enum ReadPageError: Error {
        case tooLong
        case unreadable(String)
    }

    static func readPage(_ path: String, index: Int, maxRows: Int) throws(ReadPageError) -> FaxPage {
        faxgate_tiff_silence()
        guard let tiff = TIFFOpen(path, "r") else { throw .unreadable("cannot open \(path)") }
        defer { TIFFClose(tiff) }
        guard TIFFSetDirectory(tiff, UInt32(index)) == 1 else { throw .unreadable("page \(index + 1) not in \(path)") }
        var width: UInt32 = 0, height: UInt32 = 0
        var bits: UInt16 = 1, samples: UInt16 = 1, photometric: UInt16 = UInt16(PHOTOMETRIC_MINISWHITE)
        var unit: UInt16 = UInt16(RESUNIT_INCH)
        var yres: Float = 0
        guard faxgate_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), &width) == 1,
              faxgate_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), &height) == 1
        else { throw .unreadable("page \(index + 1) has no size") }
        // 303 mm at the highest T.30 resolution is 4864 pixels.
        guard width > 0, width <= 4864 else { throw .unreadable("page \(index + 1) is \(width) pixels wide") }
        guard Int(height) <= maxRows else { throw .tooLong }
        _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)
        _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), &samples)
        guard bits == 1, samples == 1, TIFFIsTiled(tiff) == 0 else { throw .unreadable("page \(index + 1) is not bilevel") }
        _ = faxgate_tiff_get_u16(tiff, UInt32(TIFFTAG_PHOTOMETRIC), &photometric)
        _ = faxgate_tiff_get_u16_defaulted(tiff, UInt32(TIFFTAG_RESOLUTIONUNIT), &unit)
        if faxgate_tiff_get_float(tiff, UInt32(TIFFTAG_YRESOLUTION), &yres) != 1 { yres = 196 }
        let lpi = unit == UInt16(RESUNIT_CENTIMETER) ? Double(yres) * 2.54 : Double(yres)

        let rowBytes = (Int(width) + 7) / 8
        var line = [UInt8](repeating: 0, count: max(Int(TIFFScanlineSize(tiff)), rowBytes))
        var bitmap = [UInt8](repeating: 0, count: rowBytes * Int(height))
        let invert = photometric == UInt16(PHOTOMETRIC_MINISBLACK)
        for y in 0..<Int(height) {
            let status = line.withUnsafeMutableBytes { TIFFReadScanline(tiff, $0.baseAddress, UInt32(y), 0) }
            guard status == 1 else { throw .unreadable("page \(index + 1): row \(y) unreadable") }
            for i in 0..<rowBytes { bitmap[y * rowBytes + i] = invert ? ~line[i] : line[i] }
        }
        return FaxPage(bitmap: bitmap, width: Int(width), height: Int(height), resolution: lpi >= 150 ? .fine : .normal)
    }
}
