// The transmission report ("Sendebericht") mailed back to the sender: the facts of the call and a reduced
// image of page 1, as a PDF that Ghostscript's pdfwrite makes from a generated PostScript program.
import FaxDocument
import Foundation

public struct SendReportFacts: Sendable, Equatable {
    public var number: String
    public var remoteStationID: String
    public var start: Date
    public var duration: TimeInterval
    public var pagesSent: Int
    public var pagesTotal: Int
    public var resolution: VerticalResolution
    /// Bits per second of the fax modulation (e.g. 14400).
    public var bitRate: Int
    public var resultText: String
    public var success: Bool
    public var jobID: String
    public var sender: String
    /// "de" for German labels, anything else English.
    public var language: String
    /// Which page of the fax the thumbnail shows (1-based): the document's first, after a cover or text page.
    public var documentPageNumber: Int = 1

    public init(
        number: String, remoteStationID: String, start: Date, duration: TimeInterval, pagesSent: Int, pagesTotal: Int,
        resolution: VerticalResolution, bitRate: Int, resultText: String, success: Bool, jobID: String, sender: String,
        language: String
    ) {
        self.number = number
        self.remoteStationID = remoteStationID
        self.start = start
        self.duration = duration
        self.pagesSent = pagesSent
        self.pagesTotal = pagesTotal
        self.resolution = resolution
        self.bitRate = bitRate
        self.resultText = resultText
        self.success = success
        self.jobID = jobID
        self.sender = sender
        self.language = language
    }
}

public enum SendReport {
    /// Thumbnail reduction: a quarter of the fax pixels each way.
    static let reduction = 4

    public static func pdf(_ facts: SendReportFacts, firstPage: FaxPage?, options: RenderOptions = RenderOptions()) async throws(RenderError) -> [UInt8] {
        try await offPool { () throws(RenderError) -> [UInt8] in
            try Ghostscript.pdfwrite(postScript(facts, firstPage: firstPage), options: options)
        }
    }

    /// Where the thumbnail sits on the A4 report, in points (tests look for it there).
    static let thumbnailBox = (x: 197.5, y: 150.0, width: 200.0)

    static func postScript(_ facts: SendReportFacts, firstPage: FaxPage?) -> String {
        let de = Wording.isGerman(facts.language)
        let left = 57.0, right = 538.0, valueX = 220.0
        var ps = "%!PS-Adobe-3.0\n%%Pages: 1\n%%Title: \(de ? "Sendebericht" : "Transmission report")\n%%EndComments\n"
        ps += PostScript.latin1Font("Helvetica") + PostScript.latin1Font("Helvetica-Bold")
        ps += Wording.fitShow
        ps += "<< /PageSize [595 842] >> setpagedevice\n%%Page: 1 1\n"
        var y = 770.0
        ps += "/Helvetica-Bold-L1 findfont 26 scalefont setfont \(left) \(y) moveto \(PostScript.literal(de ? "Sendebericht" : "Transmission report")) show\n"
        let status = facts.success ? (de ? "Gesendet" : "Sent") : (de ? "Nicht gesendet" : "Not sent")
        ps += "/Helvetica-Bold-L1 findfont 18 scalefont setfont \(PostScript.literal(status)) dup stringwidth pop \(right) exch sub \(y) moveto show\n"
        y -= 14
        ps += "1.5 setlinewidth newpath \(left) \(y) moveto \(right) \(y) lineto stroke\n"
        y -= 28
        let resolution = facts.resolution == .fine
            ? (de ? "fein (204 × 196 dpi)" : "fine (204 × 196 dpi)")
            : (de ? "normal (204 × 98 dpi)" : "normal (204 × 98 dpi)")
        let rows: [(String, String)] = [
            (de ? "Empfänger-Nr.:" : "Number:", facts.number),
            (de ? "Gegenstelle (Kennung):" : "Remote station ID:", facts.remoteStationID.isEmpty ? "-" : facts.remoteStationID),
            (de ? "Beginn:" : "Start:", Wording.date(facts.start, language: facts.language)),
            (de ? "Dauer:" : "Duration:", Wording.duration(facts.duration)),
            (de ? "Seiten:" : "Pages:", de ? "\(facts.pagesSent) von \(facts.pagesTotal)" : "\(facts.pagesSent) of \(facts.pagesTotal)"),
            (de ? "Auflösung:" : "Resolution:", resolution),
            (de ? "Übertragungsrate:" : "Bit rate:", facts.bitRate > 0 ? "\(facts.bitRate) bit/s" : "-"),
            (de ? "Ergebnis:" : "Result:", facts.resultText),
            (de ? "Absender:" : "Sender:", facts.sender),
            (de ? "Auftrag:" : "Job:", facts.jobID),
        ]
        for (label, value) in rows {
            ps += "/Helvetica-Bold-L1 findfont 12 scalefont setfont \(left) \(y) moveto \(PostScript.literal(label)) show\n"
            ps += "/Helvetica-L1 findfont 12 scalefont setfont \(valueX) \(y) moveto "
                + "\(PostScript.literal(Wording.field(value))) \(PostScript.number(right - valueX)) fitshow\n"
            y -= 20
        }
        if let page = firstPage {
            let box = thumbnailBox
            let (pageWidth, pageHeight) = page.sizeInPoints
            let boxHeight = box.width * pageHeight / pageWidth
            ps += "/Helvetica-Bold-L1 findfont 11 scalefont setfont \(box.x) \(PostScript.number(box.y + boxHeight + 8)) moveto "
                + "\(PostScript.literal(de ? "Seite \(facts.documentPageNumber) (verkleinert)" : "Page \(facts.documentPageNumber) (reduced)")) show\n"
            ps += thumbnail(page, x: box.x, y: box.y, width: box.width, height: boxHeight)
            ps += "0.5 setlinewidth \(box.x) \(box.y) \(box.width) \(PostScript.number(boxHeight)) rectstroke\n"
        }
        return ps + "showpage\n%%EOF\n"
    }

    /// Page 1 reduced 4 × 4 (each output pixel the share of black in its block, as grey) and embedded
    /// as an 8-bit DeviceGray image; pdfwrite compresses it.
    static func thumbnail(_ source: FaxPage, x: Double, y: Double, width: Double, height: Double) -> String {
        let page = source.fineResolution()
        let r = reduction
        let w = (page.width + r - 1) / r, h = (page.height + r - 1) / r
        var ps = "gsave \(x) \(y) translate \(PostScript.number(width)) \(PostScript.number(height)) scale\n"
        ps += "\(w) \(h) 8 [\(w) 0 0 -\(h) 0 \(h)] currentfile /ASCIIHexDecode filter image\n"
        let hex = Array("0123456789abcdef".utf8)
        var line: [UInt8] = []
        line.reserveCapacity(w * 2 + 1)
        for by in 0..<h {
            line.removeAll(keepingCapacity: true)
            for bx in 0..<w {
                var black = 0, count = 0
                for yy in (by * r)..<min(page.height, by * r + r) {
                    for xx in (bx * r)..<min(page.width, bx * r + r) {
                        count += 1
                        if page.isBlack(x: xx, y: yy) { black += 1 }
                    }
                }
                // Darken a little (×2): at a quarter size single-pixel strokes would fade to light grey.
                let value = 255 - min(255, black * 2 * 255 / max(1, count))
                line.append(hex[value >> 4])
                line.append(hex[value & 15])
            }
            line.append(0x0A)
            ps += String(decoding: line, as: UTF8.self)
        }
        return ps + ">\ngrestore\n"
    }
}
