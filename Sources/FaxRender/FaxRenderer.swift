// Entry point: documents from mail (PDF, PostScript, TIFF, images, text, HTML) to fax pages.
import FaxDocument
import Foundation

public enum FaxRenderer {
    /// Renders `input` into fax pages 1728 pixels wide at `options.resolution`. Converters run as bounded
    /// subprocesses; all blocking work runs on a thread of its own, off the cooperative pool.
    public static func render(_ input: RenderInput, options: RenderOptions = RenderOptions()) async throws(RenderError) -> [FaxPage] {
        let pages: [FaxPage] = try await offPool { () throws(RenderError) -> [FaxPage] in
            switch input {
            case .pdf(let bytes):
                return try Ghostscript.rasterize(bytes, language: .pdf, options: options)
            case .postScript(let bytes):
                return try Ghostscript.rasterize(bytes, language: .postScript, options: options)
            case .tiff(let bytes):
                return try TIFFRenderer.render(bytes, options: options)
            case .image(let bytes, let mimeType):
                return [try ImageRenderer.render(bytes, mimeType: mimeType, options: options)]
            case .text(let text):
                return try renderText(text, options: options)
            case .html(let html):
                return try renderText(HTMLText.text(html), options: options)
            }
        }
        guard !pages.isEmpty else { throw RenderError(.broken, "the document has no pages", german: "das Dokument hat keine Seiten") }
        return pages
    }

    static func renderText(_ text: String, options: RenderOptions) throws(RenderError) -> [FaxPage] {
        let pages = TextLayout.paginate(text, paper: options.paper)
        guard pages.count <= options.maxPages else {
            throw RenderError(.tooManyPages, "the text needs more than \(options.maxPages) pages",
                              german: "der Text braucht mehr als \(options.maxPages) Seiten")
        }
        let program = TextLayout.postScript(pages: pages, paper: options.paper)
        return try Ghostscript.rasterize(Array(program.utf8), language: .postScript, options: options)
    }

    /// What to make of a mail part. Magic bytes decide first (a PDF named .txt is a PDF), then the MIME type,
    /// then the file name's extension. nil: not something the gateway can fax (office files, archives, …).
    public static func detect(mimeType: String, filename: String?, bytes: [UInt8]) -> RenderInput? {
        let type = mimeType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let ext = filename.flatMap { name -> String? in
            guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
            return name[name.index(after: dot)...].lowercased()
        } ?? ""

        // Known formats by content. PDF allows junk before the header (within the first 1024 bytes).
        let head = bytes.prefix(1024)
        if bytes.starts(with: Array("%PDF-".utf8)) || contains(head, Array("%PDF-".utf8)) { return .pdf(bytes) }
        if bytes.starts(with: Array("%!".utf8)) || bytes.starts(with: [0xC5, 0xD0, 0xD3, 0xC6]) { return .postScript(bytes) }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .tiff(bytes) }
        if let format = ImageFormat.sniff(bytes) {
            let claimed = type.hasPrefix("image/") ? type : "image/\(format == .jpeg ? "jpeg" : format == .png ? "png" : "gif")"
            return .image(bytes, mimeType: claimed)
        }
        // Content that is known and unsupported: ZIP (docx, odt, xlsx, zip), OLE (doc, xls), gzip, 7z, RAR.
        let refused: [[UInt8]] = [[0x50, 0x4B, 0x03, 0x04], [0x50, 0x4B, 0x05, 0x06], [0xD0, 0xCF, 0x11, 0xE0],
                                  [0x1F, 0x8B], [0x37, 0x7A, 0xBC, 0xAF], Array("Rar!".utf8)]
        if refused.contains(where: { bytes.starts(with: $0) }) { return nil }

        // Text has no magic: trust the type, then the extension, but never for bytes that are binary.
        let isHTML = type == "text/html" || type == "application/xhtml+xml" || (type.isEmpty || type == "application/octet-stream") && ["html", "htm", "xhtml"].contains(ext)
        let isText = type == "text/plain" || (type.isEmpty || type == "application/octet-stream") && ["txt", "text", "asc", "log", "csv"].contains(ext)
        if isHTML || isText {
            guard !bytes.contains(0) else { return nil }
            let text = decodeText(bytes, charset: charset(of: mimeType))
            return isHTML ? .html(text) : .text(text)
        }
        // A claimed type without its magic: let the converter say what is wrong (reported as broken).
        switch (type, ext) {
        case ("application/pdf", _), (_, "pdf"): return .pdf(bytes)
        case ("application/postscript", _), (_, "ps"), (_, "eps"): return .postScript(bytes)
        case ("image/tiff", _), (_, "tif"), (_, "tiff"): return .tiff(bytes)
        default: return nil
        }
    }

    /// The `charset` parameter of a Content-Type, lower-cased, without quotes.
    static func charset(of mimeType: String) -> String? {
        for parameter in mimeType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "charset" {
                return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"'")).lowercased()
            }
        }
        return nil
    }

    /// Mail parts arrive as bytes in their declared charset; without one (or with one we do not know),
    /// UTF-8 when valid, else Windows-1252, the usual Western fallback.
    static func decodeText(_ bytes: [UInt8], charset: String?) -> String {
        let data = Data(bytes)
        switch charset {
        case "iso-8859-1", "latin1", "iso_8859-1", "iso-8859-15", "latin-9":
            if let text = String(data: data, encoding: .isoLatin1) { return text }
        case "windows-1252", "cp1252":
            if let text = String(data: data, encoding: .windowsCP1252) { return text }
        case "utf-16", "utf-16le", "utf-16be":
            if let text = String(data: data, encoding: .utf16) { return text }
        default:
            break
        }
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return String(data: data, encoding: .windowsCP1252) ?? String(bytes.map { Character(UnicodeScalar($0)) })
    }

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        var i = haystack.startIndex
        while i + needle.count <= haystack.endIndex {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}
