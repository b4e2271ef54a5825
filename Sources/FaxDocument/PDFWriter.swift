// PDF output without re-rasterizing: each page's MH lines go into the PDF unchanged (apart from bit order)
// as a CCITTFaxDecode image, so the PDF shows exactly the received pixels and stays about as small as the fax.

public enum PDFWriter {
    /// The page box of each PDF page.
    public enum PageSize: String, Sendable, CaseIterable {
        /// The fax's physical size: 1728 dots at 204 dpi are 215 mm, a little wider than A4 (609.9 × 842 pt).
        case exact
        /// A4 (595.28 × 841.89 pt): the page scaled to fit, aspect kept, top edge at the top, so printing at
        /// 100 % on A4 cuts nothing off.
        case a4
    }

    static let a4Width = 595.27559055, a4Height = 841.88976378

    public static func write(_ pages: [FaxPage], title: String?, pageSize: PageSize = .exact) -> [UInt8] {
        var pdf = PDFBuilder()
        pdf.append("%PDF-1.4\n%\u{E2}\u{E3}\u{CF}\u{D3}\n")
        let catalog = 1, pagesObject = 2, info = 3
        let pageObjects = pages.indices.map { 4 + 3 * $0 }

        pdf.begin(catalog)
        pdf.append("<< /Type /Catalog /Pages \(pagesObject) 0 R >>\nendobj\n")
        pdf.begin(pagesObject)
        pdf.append("<< /Type /Pages /Count \(pages.count) /Kids [\(pageObjects.map { "\($0) 0 R" }.joined(separator: " "))] >>\nendobj\n")
        pdf.begin(info)
        var infoDict = "<< /Producer (Faxgate) /Creator (Faxgate)"
        if let title { infoDict += " /Title \(pdfTextString(title))" }
        pdf.append(infoDict + " >>\nendobj\n")

        for (index, page) in pages.enumerated() {
            let pageObject = pageObjects[index], content = pageObject + 1, imageObject = pageObject + 2
            // Drawn at its physical size: 204 dpi across, 98 or 196 lpi down, so normal-resolution pages keep their aspect.
            let (w, h) = page.sizeInPoints
            let box: (w: Double, h: Double), image: (x: Double, y: Double, w: Double, h: Double)
            switch pageSize {
            case .exact:
                box = (w, h); image = (0, 0, w, h)
            case .a4:
                // One scale for both axes keeps the aspect; the smaller one makes long pages fit too.
                let scale = min(a4Width / w, a4Height / h)
                let (sw, sh) = (w * scale, h * scale)
                box = (a4Width, a4Height); image = ((a4Width - sw) / 2, a4Height - sh, sw, sh)
            }
            pdf.begin(pageObject)
            pdf.append(
                "<< /Type /Page /Parent \(pagesObject) 0 R /MediaBox [0 0 \(number(box.w)) \(number(box.h))]"
                    + " /Resources << /XObject << /Im0 \(imageObject) 0 R >> >> /Contents \(content) 0 R >>\nendobj\n")
            let drawing = "q \(number(image.w)) 0 0 \(number(image.h)) \(number(image.x)) \(number(image.y)) cm /Im0 Do Q\n"
            pdf.begin(content)
            pdf.append("<< /Length \(drawing.utf8.count) >>\nstream\n\(drawing)endstream\nendobj\n")

            // K 0 = pure 1-D (MH); EncodedByteAlign because every SFF line starts on a byte boundary;
            // no EOLs. BlackIs1 false: the decoder yields 0 for black, which DeviceGray shows as black.
            let data = msbFirstCodes(page)
            pdf.begin(imageObject)
            pdf.append(
                "<< /Type /XObject /Subtype /Image /Width \(page.width) /Height \(page.height)"
                    + " /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode"
                    + " /DecodeParms << /K 0 /Columns \(page.width) /Rows \(page.height) /EncodedByteAlign true"
                    + " /EndOfBlock false /BlackIs1 false >> /Length \(data.count) >>\nstream\n")
            pdf.append(data)
            pdf.append("\nendstream\nendobj\n")
        }

        let xref = pdf.bytes.count
        let objectCount = 3 + 3 * pages.count
        pdf.append("xref\n0 \(objectCount + 1)\n0000000000 65535 f \n")
        for object in 1...objectCount {
            pdf.append(pad10(pdf.offsets[object] ?? 0) + " 00000 n \n")
        }
        pdf.append("trailer\n<< /Size \(objectCount + 1) /Root \(catalog) 0 R /Info \(info) 0 R >>\nstartxref\n\(xref)\n%%EOF\n")
        return pdf.bytes
    }

    /// All lines of a page, each byte bit-reversed from SFF's LSB-first order to the MSB-first order PDF filters read.
    static func msbFirstCodes(_ page: FaxPage) -> [UInt8] {
        var total = 0
        for line in page.mhLines { total += line.count }
        var data = [UInt8](repeating: 0, count: total)
        MHCodec.bitReversed.withUnsafeBufferPointer { reverse in
            data.withUnsafeMutableBufferPointer { out in
                var i = 0
                for line in page.mhLines {
                    for byte in line {
                        out[i] = reverse[Int(byte)]
                        i += 1
                    }
                }
            }
        }
        return data
    }

    static func number(_ value: Double) -> String {
        // Eight decimals, rounded down: renderers size the page raster as ceil(points * dpi / 72), so 609.88 pt
        // (or 609.88235295 pt) gives 1729 columns at 204 dpi and a resampled, blurred fax instead of 1:1 pixels.
        let scaled = Int64((value * 100_000_000).rounded(.down))
        var fraction = String(scaled % 100_000_000)
        fraction = String(repeating: "0", count: 8 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(scaled / 100_000_000)" : "\(scaled / 100_000_000).\(fraction)"
    }

    static func pad10(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }

    /// A PDF text string: literal for printable ASCII, UTF-16BE with byte-order mark otherwise.
    static func pdfTextString(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) {
            var escaped = ""
            for ch in text {
                if ch == "(" || ch == ")" || ch == "\\" { escaped.append("\\") }
                escaped.append(ch)
            }
            return "(\(escaped))"
        }
        var hex = "<FEFF"
        let digits = Array("0123456789ABCDEF")
        for unit in text.utf16 {
            for shift in [12, 8, 4, 0] { hex.append(digits[Int((unit >> UInt16(shift)) & 0xF)]) }
        }
        return hex + ">"
    }
}

/// Byte buffer that remembers where each object starts, for the xref table.
private struct PDFBuilder {
    var bytes: [UInt8] = []
    var offsets: [Int: Int] = [:]

    mutating func begin(_ object: Int) {
        offsets[object] = bytes.count
        append("\(object) 0 obj\n")
    }

    mutating func append(_ text: String) {
        // Header's binary marker uses Latin-1 code points; everything else is ASCII.
        for scalar in text.unicodeScalars { bytes.append(UInt8(truncatingIfNeeded: scalar.value)) }
    }

    mutating func append(_ data: [UInt8]) { bytes += data }
}
