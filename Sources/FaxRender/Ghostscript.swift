// PDF and PostScript to fax pages through a sandboxed Ghostscript: one pass, pbmraw pages of exactly
// 1728 pixels. The media is the fax line (1728 px) by the paper's height; -dFitPage scales each page into
// it, centres it and turns landscape pages to portrait, so A4 (1686 px) lands centred and Letter shrinks.
import FaxDocument
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum Ghostscript {
    enum Language { case pdf, postScript }

    static func rasterArguments(input: String, language: Language, outputPattern: String, options: RenderOptions) -> [String] {
        let dpi = options.resolution == .fine ? "204x196" : "204x98"
        var args = ["-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-dNOINTERPOLATE", "-sDEVICE=pbmraw", "-r\(dpi)",
                    "-g\(FaxPage.standardWidth)x\(options.pageRows)", "-dFIXEDMEDIA", "-dFitPage"]
        if language == .pdf { args.append("-dPDFFitPage") }
        // One page past the limit tells "too many" from "exactly the limit" without rendering the rest.
        args += ["-dFirstPage=1", "-dLastPage=\(options.maxPages + 1)", "-sOutputFile=\(outputPattern)", input]
        return args
    }

    /// Blocking: renders `bytes` (a PDF or PostScript program) into fax pages.
    static func rasterize(_ bytes: [UInt8], language: Language, options: RenderOptions) throws(RenderError) -> [FaxPage] {
        let work = try WorkDirectory()
        let input = try work.write(language == .pdf ? "input.pdf" : "input.ps", bytes)
        let pagesDir = work.file("pages")
        try? FileManager.default.createDirectory(atPath: pagesDir, withIntermediateDirectories: false)
        let result = try Sandbox.run(
            "gs", rasterArguments(input: input, language: language, outputPattern: "\(pagesDir)/p-%06d.pbm", options: options),
            options: options, workDir: work.path)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: pagesDir)) ?? []).filter { $0.hasSuffix(".pbm") }.sorted()
        try classify(result, producedOutput: !names.isEmpty, what: language == .pdf ? "PDF" : "PostScript document", options: options)
        guard names.count <= options.maxPages else {
            throw RenderError(.tooManyPages, "the document has more than \(options.maxPages) pages")
        }
        var pages: [FaxPage] = []
        pages.reserveCapacity(names.count)
        for name in names {
            guard let data = FileManager.default.contents(atPath: "\(pagesDir)/\(name)") else {
                throw RenderError(.broken, "Ghostscript's page \(pages.count + 1) is unreadable")
            }
            // A page Ghostscript wrote only partly (killed mid-page) fails here rather than becoming a short page.
            guard let page = try? PBM.readPage([UInt8](data), resolution: options.resolution),
                page.width == FaxPage.standardWidth, page.height == options.pageRows
            else { throw RenderError(.broken, "Ghostscript's page \(pages.count + 1) is incomplete") }
            pages.append(page)
            try? FileManager.default.removeItem(atPath: "\(pagesDir)/\(name)")
        }
        return pages
    }

    /// Blocking: turns a generated PostScript program into PDF bytes (send reports).
    static func pdfwrite(_ postScript: String, options: RenderOptions) throws(RenderError) -> [UInt8] {
        let work = try WorkDirectory()
        let input = try work.write("report.ps", Array(postScript.utf8))
        let output = work.file("report.pdf")
        let result = try Sandbox.run(
            "gs", ["-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=pdfwrite", "-dCompatibilityLevel=1.5",
                   "-sOutputFile=\(output)", input],
            options: options, workDir: work.path)
        try classify(result, producedOutput: FileManager.default.fileExists(atPath: output), what: "report", options: options)
        return try work.read("report.pdf")
    }

    /// Maps Ghostscript's outcome to a RenderError, or returns when pages came out cleanly.
    static func classify(_ result: SandboxResult, producedOutput: Bool, what: String, options: RenderOptions) throws(RenderError) {
        if result.timedOut || result.signal == SIGXCPU {
            throw RenderError(.timeout, "Ghostscript gave up after \(options.timeoutSeconds) s")
        }
        let log = result.log
        if log.contains("requires a password") || log.contains("Couldn't decrypt") || log.contains("password") && log.contains("ncrypt") {
            throw RenderError(.encrypted, "the PDF is password-protected")
        }
        if log.contains("VMerror") || log.contains("Out of memory") || log.contains("out of memory") {
            throw RenderError(.tooLarge, "the \(what) needs more than \(options.memoryLimitMB) MB to render")
        }
        if let signal = result.signal {
            throw RenderError(.broken, "Ghostscript stopped with signal \(signal) on the \(what)")
        }
        if result.exitCode != 0 || !producedOutput {
            let detail = errorSummary(log)
            throw RenderError(.broken, "the \(what) cannot be read" + (detail.isEmpty ? "" : ": \(detail)"))
        }
    }

    /// The lines of Ghostscript's chatter worth showing a sender.
    static func errorSummary(_ log: String) -> String {
        let lines = log.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("Output may be incorrect") && !$0.hasPrefix("No pages will be processed") }
        let errors = lines.filter { $0.contains("Error") || $0.contains("error") || $0.contains("not located") }
        let chosen = (errors.isEmpty ? lines : errors).prefix(3).joined(separator: "; ")
        return String(chosen.replacingOccurrences(of: "**** ", with: "").prefix(300))
    }
}
