// Multi-page fax TIFF (Class F style) through libtiff, and a reader for any bilevel TIFF.
import CTIFF

public struct TIFFError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum TIFFWriter {
    public enum Compression: Sendable {
        /// CCITT Group 3, one-dimensional (MH), EOLs byte-aligned (fill bits).
        case g3
        /// CCITT Group 4 (T.6).
        case g4
    }

    public static func write(_ pages: [FaxPage], to path: String, compression: Compression) throws(TIFFError) {
        guard !pages.isEmpty else { throw TIFFError("no pages to write") }
        faxgate_tiff_silence()
        guard let tiff = TIFFOpen(path, "w") else { throw TIFFError("cannot create \(path)") }
        defer { TIFFClose(tiff) }
        for (index, page) in pages.enumerated() {
            var ok = true
            ok = ok && faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_SUBFILETYPE), UInt32(FILETYPE_PAGE)) == 1
            ok = ok && faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(page.width)) == 1
            ok = ok && faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), UInt32(page.height)) == 1
            ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), 1) == 1
            ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1) == 1
            ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG)) == 1
            ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISWHITE)) == 1
            switch compression {
            case .g3:
                ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_CCITTFAX3)) == 1
                ok = ok && faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_GROUP3OPTIONS), UInt32(GROUP3OPT_FILLBITS)) == 1
            case .g4:
                ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_CCITTFAX4)) == 1
            }
            ok = ok && faxgate_tiff_set_float(tiff, UInt32(TIFFTAG_XRESOLUTION), Float(FaxPage.horizontalDPI)) == 1
            ok = ok && faxgate_tiff_set_float(tiff, UInt32(TIFFTAG_YRESOLUTION), Float(page.resolution.linesPerInch)) == 1
            ok = ok && faxgate_tiff_set_u16(tiff, UInt32(TIFFTAG_RESOLUTIONUNIT), UInt16(RESUNIT_INCH)) == 1
            ok = ok && faxgate_tiff_set_page(tiff, UInt16(index), UInt16(pages.count)) == 1
            // One strip per page, as fax TIFFs usually have.
            ok = ok && faxgate_tiff_set_u32(tiff, UInt32(TIFFTAG_ROWSPERSTRIP), UInt32(max(page.height, 1))) == 1
            ok = ok && faxgate_tiff_set_string(tiff, UInt32(TIFFTAG_SOFTWARE), "Faxgate") == 1
            guard ok else { throw TIFFError("libtiff refused a tag for page \(index + 1)") }

            var row = [UInt8](repeating: 0, count: page.rowBytes)
            for y in 0..<page.height {
                // libtiff's scanline API wants a mutable buffer, so copy the row.
                for i in 0..<page.rowBytes { row[i] = page.bitmap[y * page.rowBytes + i] }
                let written = row.withUnsafeMutableBytes { TIFFWriteScanline(tiff, $0.baseAddress, UInt32(y), 0) }
                guard written == 1 else { throw TIFFError("writing row \(y) of page \(index + 1) failed") }
            }
            guard TIFFWriteDirectory(tiff) == 1 else { throw TIFFError("writing page \(index + 1) failed") }
        }
    }
}
