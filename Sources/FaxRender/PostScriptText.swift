// Text for generated PostScript: Unicode to the Latin-1 glyphs of the standard fonts, string literals
// that cannot break out of their parentheses, and the monospace page layout of plain-text bodies.
import Foundation

enum Latin1 {
    /// Characters outside Latin-1 that have a close Latin-1 spelling.
    static let substitutes: [Unicode.Scalar: String] = [
        "\u{20AC}": "EUR", "\u{2018}": "'", "\u{2019}": "'", "\u{201A}": ",", "\u{201C}": "\"", "\u{201D}": "\"",
        "\u{201E}": "\"", "\u{2013}": "-", "\u{2014}": "--", "\u{2026}": "...", "\u{2022}": "*", "\u{2212}": "-",
        "\u{2010}": "-", "\u{2011}": "-", "\u{2039}": "<", "\u{203A}": ">", "\u{2122}": "(TM)", "\u{0152}": "OE",
        "\u{0153}": "oe", "\u{0160}": "S", "\u{0161}": "s", "\u{017D}": "Z", "\u{017E}": "z", "\u{0178}": "Y",
        "\u{2002}": " ", "\u{2003}": " ", "\u{2009}": " ", "\u{200B}": "", "\u{FEFF}": "", "\u{00AD}": "",
        "\u{0141}": "L", "\u{0142}": "l", "\u{0110}": "D", "\u{0111}": "d", "\u{0131}": "i",
    ]

    /// Visible stand-in for a character no font here can show.
    static let replacement: UInt8 = UInt8(ascii: "?")

    /// Latin-1 bytes for `text`: direct where possible, then a substitute, then the base letter of a
    /// decomposed character (č → c), else `?`. Line breaks and tabs are kept; other controls dropped.
    static func bytes(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value == 0x0A || value == 0x09 || value == 0x0C {
                out.append(UInt8(value))
            } else if value < 0x20 || (0x7F..<0xA0).contains(value) {
                continue
            } else if value < 0x100 {
                out.append(UInt8(value))
            } else if let substitute = substitutes[scalar] {
                out += substitute.unicodeScalars.map { UInt8($0.value) }
            } else if let base = String(scalar).decomposedStringWithCanonicalMapping.unicodeScalars.first,
                base.value < 0x100, base.value >= 0x20, base != scalar {
                out.append(UInt8(base.value))
            } else if scalar.properties.generalCategory == .nonspacingMark {
                continue
            } else {
                out.append(replacement)
            }
        }
        return out
    }
}

enum PostScript {
    /// A PostScript string literal of Latin-1 bytes: parentheses and backslashes escaped, everything
    /// outside printable ASCII as octal, so the program stays 7-bit and a field can never end the string.
    static func literal(_ bytes: [UInt8]) -> String {
        var out = "("
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"):
                out += "\\" + String(UnicodeScalar(byte))
            case 0x20...0x7E:
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let octal = String(byte, radix: 8)
                out += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
            }
        }
        return out + ")"
    }

    static func literal(_ text: String) -> String { literal(Latin1.bytes(text).filter { $0 >= 0x20 }) }

    static func number(_ value: Double) -> String { String(format: "%.2f", value) }

    /// Defines `/<name>-L1`: the standard font re-encoded to ISO Latin-1, so umlauts have glyphs.
    static func latin1Font(_ name: String) -> String {
        "/\(name) findfont dup length dict begin { 1 index /FID ne { def } { pop pop } ifelse } forall "
            + "/Encoding ISOLatin1Encoding dup length array copy "
            // PostScript's ISOLatin1Encoding has minus at '-' and curly quotes at ' and `; text extracted
            // from the report PDF (and copied by readers) should get the ASCII characters that were typed.
            + "dup 45 /hyphen put dup 39 /quotesingle put dup 96 /grave put def "
            + "currentdict end /\(name)-L1 exch definefont pop\n"
    }
}

/// Plain text set in Courier 10 pt: 80 columns, 12 pt lines, 20 mm margins, words wrapped.
enum TextLayout {
    static let columns = 80
    static let fontSize = 10.0
    static let lineHeight = 12.0
    static let margin = 57.0

    static func linesPerPage(_ paper: Paper) -> Int { Int((paper.points.height - 2 * margin) / lineHeight) }

    /// Pages of lines (Latin-1 bytes). A form feed starts a new page.
    static func paginate(_ text: String, paper: Paper) -> [[[UInt8]]] {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let perPage = linesPerPage(paper)
        var pages: [[[UInt8]]] = [[]]
        for rawLine in Latin1.bytes(normalized).split(separator: 0x0A, omittingEmptySubsequences: false) {
            var line = Array(rawLine)
            // Form feeds inside the line break the page where they stand.
            while let formFeed = line.firstIndex(of: 0x0C) {
                for wrapped in wrap(expandTabs(Array(line[..<formFeed]))) where !wrapped.isEmpty || formFeed > 0 {
                    if pages[pages.count - 1].count == perPage { pages.append([]) }
                    pages[pages.count - 1].append(wrapped)
                }
                pages.append([])
                line = Array(line[(formFeed + 1)...])
            }
            for wrapped in wrap(expandTabs(line)) {
                if pages[pages.count - 1].count == perPage { pages.append([]) }
                pages[pages.count - 1].append(wrapped)
            }
        }
        // Trailing empty lines must not start an empty last page.
        while pages.count > 1, pages[pages.count - 1].allSatisfy(\.isEmpty) { pages.removeLast() }
        return pages
    }

    static func expandTabs(_ line: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for byte in line {
            if byte == 0x09 {
                repeat { out.append(0x20) } while out.count % 8 != 0
            } else {
                out.append(byte)
            }
        }
        return out
    }

    /// Breaks at the last space that keeps the line within `columns` (unless that would leave less than
    /// half a line), otherwise hard at the column limit.
    static func wrap(_ line: [UInt8], columns: Int = TextLayout.columns) -> [[UInt8]] {
        var rest = line[...]
        var out: [[UInt8]] = []
        while rest.count > columns {
            let window = rest.prefix(columns + 1)
            if let space = window.lastIndex(of: 0x20), space - rest.startIndex >= columns / 2 {
                out.append(Array(rest[..<space]))
                rest = rest[(space + 1)...]
            } else {
                out.append(Array(rest.prefix(columns)))
                rest = rest.dropFirst(columns)
            }
        }
        out.append(Array(rest))
        return out
    }

    static func postScript(pages: [[[UInt8]]], paper: Paper) -> String {
        let (width, height) = paper.points
        let left = (width - Double(columns) * fontSize * 0.6) / 2
        var ps = "%!PS-Adobe-3.0\n%%Pages: \(pages.count)\n%%EndComments\n"
        ps += PostScript.latin1Font("Courier")
        ps += "/L { moveto show } bind def\n"
        for (index, lines) in pages.enumerated() {
            ps += "%%Page: \(index + 1) \(index + 1)\n"
            ps += "<< /PageSize [\(Int(width)) \(Int(height))] >> setpagedevice\n"
            ps += "/Courier-L1 findfont \(PostScript.number(fontSize)) scalefont setfont\n"
            for (row, line) in lines.enumerated() where !line.isEmpty {
                let y = height - margin - fontSize - Double(row) * lineHeight
                ps += "\(PostScript.literal(line)) \(PostScript.number(left)) \(PostScript.number(y)) L\n"
            }
            ps += "showpage\n"
        }
        return ps + "%%EOF\n"
    }
}
