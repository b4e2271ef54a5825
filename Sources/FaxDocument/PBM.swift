// Portable bitmap (P4) I/O: the exchange format of sfftobmp, Ghostscript's pbmraw and pdftoppm -mono.
// P4 rows are packed MSB-first with 1 = black, exactly FaxPage's bitmap layout.

public enum PBMError: Error, Sendable, Equatable {
    case notP4
    case badHeader
    case truncated(expected: Int, actual: Int)
}

public enum PBM {
    public static func read(_ data: [UInt8]) throws(PBMError) -> (width: Int, height: Int, bitmap: [UInt8]) {
        guard data.count >= 2, data[0] == UInt8(ascii: "P"), data[1] == UInt8(ascii: "4") else { throw .notP4 }
        var i = 2
        func number() throws(PBMError) -> Int {
            // Whitespace and '#' comments may appear between header fields.
            while i < data.count {
                if data[i] == UInt8(ascii: "#") {
                    while i < data.count && data[i] != 0x0A { i += 1 }
                } else if data[i] == 0x20 || (0x09...0x0D).contains(data[i]) {
                    i += 1
                } else {
                    break
                }
            }
            var value = 0, digits = 0
            while i < data.count, (0x30...0x39).contains(data[i]), digits < 9 {
                value = value * 10 + Int(data[i] - 0x30)
                i += 1
                digits += 1
            }
            guard digits > 0 else { throw .badHeader }
            return value
        }
        let width = try number()
        let height = try number()
        guard width > 0, i < data.count else { throw .badHeader }
        i += 1  // exactly one whitespace byte before the raster
        let size = (width + 7) / 8 * height
        guard data.count - i >= size else { throw .truncated(expected: size, actual: data.count - i) }
        return (width, height, Array(data[i..<(i + size)]))
    }

    public static func write(width: Int, height: Int, bitmap: [UInt8]) -> [UInt8] {
        Array("P4\n\(width) \(height)\n".utf8) + bitmap.prefix((width + 7) / 8 * height)
    }

    /// Reads a P4 image as a fax page (computing its MH lines).
    public static func readPage(_ data: [UInt8], resolution: VerticalResolution) throws(PBMError) -> FaxPage {
        let (width, height, bitmap) = try read(data)
        return FaxPage(bitmap: bitmap, width: width, height: height, resolution: resolution)
    }

    public static func write(_ page: FaxPage) -> [UInt8] {
        write(width: page.width, height: page.height, bitmap: page.bitmap)
    }
}
