// One fax page as a bitmap plus its MH line codes, the form every reader produces and every writer consumes.

/// Vertical resolution of a fax page (T.30): "normal" 3.85 lines/mm and "fine" 7.7 lines/mm.
public enum VerticalResolution: Sendable, Equatable, Hashable {
    case normal
    case fine

    /// Nominal lines per inch, the values fax software (and SFF/TIFF headers) use.
    public var linesPerInch: Double {
        switch self {
        case .normal: 98
        case .fine: 196
        }
    }
}

/// One fax page: packed 1-bit rows, 1 = black, most significant bit = leftmost pixel, `rowBytes = (width+7)/8`.
///
/// `mhLines[i]` is always a valid MH code of exactly `width` pixels for row `i`, in **SFF bit order**:
/// first code bit in the least significant bit of the first byte, no EOL, zero-padded to a whole byte.
/// Writers that need MSB-first order (PDF, TIFF) reverse each byte with `MHCodec.bitReversed`.
/// Equality compares the image (width, resolution, pixels); the MH codes are a derived form of it.
public struct FaxPage: Sendable, Equatable {
    /// Horizontal resolution of every fax page (8 dots/mm, which fax software calls 204 dpi).
    public static let horizontalDPI: Double = 204
    /// Standard A4/Letter fax line width.
    public static let standardWidth = 1728

    public private(set) var width: Int
    public var resolution: VerticalResolution
    public private(set) var bitmap: [UInt8]
    public private(set) var mhLines: [[UInt8]]
    /// Lines that arrived damaged (bad-line records or undecodable codes) and were replaced by the previous line.
    public var badLines: Int = 0

    public var rowBytes: Int { (width + 7) / 8 }
    public var height: Int { rowBytes == 0 ? 0 : bitmap.count / rowBytes }

    /// Creates a page from a packed bitmap and computes its MH codes.
    public init(bitmap: [UInt8], width: Int, height: Int, resolution: VerticalResolution) {
        let rowBytes = (width + 7) / 8
        precondition(width > 0 && height >= 0 && bitmap.count >= rowBytes * height, "bitmap smaller than width x height")
        var bits = Array(bitmap.prefix(rowBytes * height))
        // Pixels past `width` in the last byte are not part of the image; clear them so equality is well defined.
        if width % 8 != 0 {
            let keep: UInt8 = 0xFF << UInt8(8 - width % 8)
            for y in 0..<height { bits[y * rowBytes + rowBytes - 1] &= keep }
        }
        self.width = width
        self.resolution = resolution
        self.bitmap = bits
        self.mhLines = FaxPage.encodeAll(bits, width: width, height: height)
    }

    /// Used by readers that already hold validated codes for every row.
    init(validatedBitmap: [UInt8], mhLines: [[UInt8]], width: Int, resolution: VerticalResolution, badLines: Int) {
        self.width = width
        self.resolution = resolution
        self.bitmap = validatedBitmap
        self.mhLines = mhLines
        self.badLines = badLines
    }

    public static func == (lhs: FaxPage, rhs: FaxPage) -> Bool {
        lhs.width == rhs.width && lhs.resolution == rhs.resolution && lhs.bitmap == rhs.bitmap
    }

    /// Whether pixel (x, y) is black.
    public func isBlack(x: Int, y: Int) -> Bool {
        bitmap[y * rowBytes + (x >> 3)] & (0x80 >> UInt8(x & 7)) != 0
    }

    /// Physical page size in PostScript points (1/72 inch): width/204 in by height/lpi in.
    public var sizeInPoints: (width: Double, height: Double) {
        (Double(width) / FaxPage.horizontalDPI * 72, Double(height) / resolution.linesPerInch * 72)
    }

    /// The page at fine resolution: a normal page gets every row doubled, which keeps its aspect ratio.
    public func fineResolution() -> FaxPage {
        guard resolution == .normal else { return self }
        var bits: [UInt8] = []
        var codes: [[UInt8]] = []
        bits.reserveCapacity(bitmap.count * 2)
        codes.reserveCapacity(mhLines.count * 2)
        for y in 0..<height {
            let row = bitmap[y * rowBytes..<(y + 1) * rowBytes]
            bits.append(contentsOf: row)
            bits.append(contentsOf: row)
            codes.append(mhLines[y])
            codes.append(mhLines[y])
        }
        return FaxPage(validatedBitmap: bits, mhLines: codes, width: width, resolution: .fine, badLines: badLines * 2)
    }

    static func encodeAll(_ bitmap: [UInt8], width: Int, height: Int) -> [[UInt8]] {
        let rowBytes = (width + 7) / 8
        var lines: [[UInt8]] = []
        lines.reserveCapacity(height)
        bitmap.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for y in 0..<height {
                var writer = MHBitWriter(capacity: 8)
                MHCodec.encodeRuns(base + y * rowBytes, width: width, into: &writer)
                lines.append(writer.finish())
            }
        }
        return lines
    }
}
