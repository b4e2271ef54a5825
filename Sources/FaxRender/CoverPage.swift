// The cover page sent before a document: a PostScript template whose fields are inserted only as escaped
// string literals, so a subject like "a) b\" cannot change the program.
import FaxDocument
import Foundation

enum Wording {
    static func isGerman(_ language: String) -> Bool { language.lowercased().hasPrefix("de") }

    static func date(_ date: Date, language: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: isGerman(language) ? "de_DE" : "en_GB")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = isGerman(language) ? "dd.MM.yyyy, HH:mm:ss" : "yyyy-MM-dd, HH:mm:ss"
        return formatter.string(from: date)
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = max(0, Int(seconds.rounded()))
        return total >= 60 ? "\(total / 60) min \(total % 60) s" : "\(total) s"
    }

    /// Caps a field so a hostile value cannot be squeezed into an unreadable hairline.
    static func field(_ text: String, limit: Int = 120) -> String {
        let single = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return single.count > limit ? String(single.prefix(limit - 3)) + "..." : single
    }

    /// `(text) maxwidth fitshow`: shows text at the current point, narrowed horizontally if it is too wide.
    static let fitShow = """
        /fitshow { 1 index stringwidth pop 2 copy lt
          { div gsave currentpoint translate 1 scale 0 0 moveto show grestore } { pop pop show } ifelse } bind def

        """
}

public enum CoverPage {
    /// Renders the cover page as one fax page. `pages` is the total the recipient should expect,
    /// including this cover page.
    public static func render(
        sender: String, recipient: String, recipientNumber: String, subject: String, pages: Int, date: Date,
        comment: String?, language: String, options: RenderOptions = RenderOptions()
    ) async throws(RenderError) -> FaxPage {
        let program = postScript(sender: sender, recipient: recipient, recipientNumber: recipientNumber, subject: subject,
                                 pages: pages, date: date, comment: comment, language: language, paper: options.paper)
        var single = options
        single.maxPages = 1
        let coverOptions = single
        let rendered = try await offPool { () throws(RenderError) -> [FaxPage] in
            try Ghostscript.rasterize(Array(program.utf8), language: .postScript, options: coverOptions)
        }
        guard let page = rendered.first else { throw RenderError(.broken, "the cover page template produced no page", german: "die Deckblatt-Vorlage ergab keine Seite") }
        return page
    }

    /// Whether `comment` fits the cover page's message field whole (Courier 11 pt, 72 columns, the lines between
    /// the table and the bottom margin), so a short mail text can go there instead of onto a page of its own.
    public static func commentFits(_ comment: String, paper: Paper = .a4) -> Bool {
        var lines = 0
        for raw in Latin1.bytes(comment.replacingOccurrences(of: "\r\n", with: "\n")).split(separator: 0x0A, omittingEmptySubsequences: false) {
            lines += TextLayout.wrap(TextLayout.expandTabs(Array(raw)), columns: 72).count
        }
        // The same geometry as `postScript`: the message field starts 376 pt below the top edge.
        let top = paper.points.height - 376
        return lines <= Int((top - 57) / 13.5) + 1
    }

    static func postScript(
        sender: String, recipient: String, recipientNumber: String, subject: String, pages: Int, date: Date,
        comment: String?, language: String, paper: Paper
    ) -> String {
        let de = Wording.isGerman(language)
        let (width, height) = paper.points
        let left = 57.0, right = width - 57, valueX = 200.0
        var ps = "%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n"
        ps += PostScript.latin1Font("Helvetica") + PostScript.latin1Font("Helvetica-Bold") + PostScript.latin1Font("Courier")
        ps += Wording.fitShow
        ps += "<< /PageSize [\(Int(width)) \(Int(height))] >> setpagedevice\n%%Page: 1 1\n"
        var y = height - 90
        ps += "/Helvetica-Bold-L1 findfont 40 scalefont setfont \(left) \(y) moveto (Telefax) show\n"
        y -= 18
        ps += "2 setlinewidth newpath \(left) \(y) moveto \(right) \(y) lineto stroke\n"
        y -= 40
        let rows: [(String, String)] = [
            (de ? "An:" : "To:", recipient),
            (de ? "Fax-Nr.:" : "Fax number:", recipientNumber),
            (de ? "Von:" : "From:", sender),
            (de ? "Datum:" : "Date:", Wording.date(date, language: language)),
            (de ? "Seiten:" : "Pages:", de ? "\(pages) (mit Deckblatt)" : "\(pages) (including this page)"),
            (de ? "Betreff:" : "Subject:", subject),
        ]
        for (label, value) in rows {
            ps += "/Helvetica-Bold-L1 findfont 14 scalefont setfont \(left) \(y) moveto \(PostScript.literal(label)) show\n"
            ps += "/Helvetica-L1 findfont 16 scalefont setfont \(valueX) \(y) moveto "
                + "\(PostScript.literal(Wording.field(value))) \(PostScript.number(right - valueX)) fitshow\n"
            y -= 30
        }
        y += 10
        ps += "1 setlinewidth newpath \(left) \(y) moveto \(right) \(y) lineto stroke\n"
        if let comment, !comment.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            y -= 36
            ps += "/Helvetica-Bold-L1 findfont 14 scalefont setfont \(left) \(y) moveto \(PostScript.literal(de ? "Mitteilung:" : "Message:")) show\n"
            y -= 22
            ps += "/Courier-L1 findfont 11 scalefont setfont\n"
            // Courier 11 pt: 6.6 pt per character, 72 columns fit between the margins.
            var lines: [[UInt8]] = []
            for raw in Latin1.bytes(comment.replacingOccurrences(of: "\r\n", with: "\n")).split(separator: 0x0A, omittingEmptySubsequences: false) {
                lines += TextLayout.wrap(TextLayout.expandTabs(Array(raw)), columns: 72)
            }
            let room = Int((y - 57) / 13.5) + 1
            if lines.count > room { lines = Array(lines.prefix(room - 1)) + [Array("...".utf8)] }
            for line in lines {
                if !line.isEmpty { ps += "\(left) \(PostScript.number(y)) moveto \(PostScript.literal(line.filter { $0 != 0x0C })) show\n" }
                y -= 13.5
            }
        }
        return ps + "showpage\n%%EOF\n"
    }
}
