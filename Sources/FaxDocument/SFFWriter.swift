// Writes pages as SFF, the format CAPI controllers send: MH lines as records, runs of white lines compressed.

public enum SFFWriter {
    public static func write(_ pages: [FaxPage]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + pages.reduce(0) { $0 + 18 + $1.mhLines.reduce(0) { $0 + $1.count + 1 } } + 2)
        out += SFFReader.magic
        out += [1, 0]                    // version 1, reserved
        appendU16(&out, 0)               // user information
        appendU16(&out, min(pages.count, 0xFFFF))
        appendU16(&out, 0x14)            // first page header follows directly
        let lastPageField = out.count
        appendU32(&out, 0)               // offset of last page header, patched below
        let endField = out.count
        appendU32(&out, 0)               // offset of document end, patched below

        var lastPage = 0
        for page in pages {
            lastPage = out.count
            appendPage(page, to: &out)
        }
        patchU32(&out, at: lastPageField, UInt32(lastPage))
        patchU32(&out, at: endField, UInt32(out.count))
        out += [0xFE, 0x00]              // end of document
        return out
    }

    // Streaming: a transport appends page after page to a durable spool file as each arrives, without
    // knowing the count up front. SFFReader walks the records and ignores the header's count and offsets.

    /// The 20-byte document header with page count 0 (unknown) and no offsets; pages follow directly.
    public static func documentHeader() -> [UInt8] {
        var out: [UInt8] = []
        out += SFFReader.magic
        out += [1, 0]
        appendU16(&out, 0)
        appendU16(&out, 0)
        appendU16(&out, 0x14)
        appendU32(&out, 0)
        appendU32(&out, 0)
        return out
    }

    /// One page: its page header and line records, to append after `documentHeader()` or a previous page.
    public static func pageBytes(_ page: FaxPage) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(18 + page.mhLines.reduce(0) { $0 + $1.count + 1 })
        appendPage(page, to: &out)
        return out
    }

    /// The end-of-document record that closes a streamed file.
    public static func documentEnd() -> [UInt8] { [0xFE, 0x00] }

    private static func appendPage(_ page: FaxPage, to out: inout [UInt8]) {
        out += [0xFE, 0x10]
        out.append(page.resolution == .fine ? 1 : 0)
        out += [0, 0, 0]             // 203 dpi, MH coding, reserved
        appendU16(&out, UInt16(clamping: page.width))
        appendU16(&out, UInt16(clamping: page.height))
        // Previous/next page offsets: optional, left 0 like Ghostscript's cfax device; readers walk the records.
        appendU32(&out, 0)
        appendU32(&out, 0)

        let white = FaxPage.whiteLine(width: page.width)
        var pendingWhite = 0
        func flushWhite() {
            while pendingWhite > 0 {
                let n = min(pendingWhite, 37)
                out.append(UInt8(216 + n))
                pendingWhite -= n
            }
        }
        for code in page.mhLines {
            if code == white {
                pendingWhite += 1
                continue
            }
            flushWhite()
            if code.count <= 216 {
                out.append(UInt8(code.count))
            } else {
                out.append(0)
                appendU16(&out, UInt16(code.count))
            }
            out += code
        }
        flushWhite()
    }

    private static func appendU16(_ out: inout [UInt8], _ v: Int) { appendU16(&out, UInt16(v)) }
    private static func appendU16(_ out: inout [UInt8], _ v: UInt16) {
        out.append(UInt8(v & 0xFF))
        out.append(UInt8(v >> 8))
    }
    private static func appendU32(_ out: inout [UInt8], _ v: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8((v >> UInt32(shift)) & 0xFF)) }
    }
    private static func patchU32(_ out: inout [UInt8], at index: Int, _ v: UInt32) {
        for i in 0..<4 { out[index + i] = UInt8((v >> UInt32(8 * i)) & 0xFF) }
    }
}
