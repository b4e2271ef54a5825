import ArgumentParser
import FaxDocument
import FaxRender
import Foundation

/// `faxgate bench`: prints throughput figures. Speed is measured here, not asserted in unit tests.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure conversion speed next to the classic tool chain.",
        subcommands: [SFFToPDF.self, PDFToSFF.self, SnapshotBench.self, WebBench.self, SoftFaxBench.self, StorageBench.self])

    struct SFFToPDF: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sff-to-pdf",
            abstract: "SFF → PDF pages per second, ours vs. sfftobmp + tiffcp + tiff2pdf on the same input.")
        @Option(help: "SFF file to convert (default: a 10-page test document made with Ghostscript's cfax device).")
        var input: String?
        @Option(help: "How many times to convert.") var repeats = 20

        func run() async throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-bench-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            let sffPath = try input ?? BenchInput.makeSFF(in: work, pages: 10)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sffPath)))

            let document = try SFFReader.read(bytes)
            let pages = document.pages.count
            var outputSize = 0
            let clock = ContinuousClock()
            let ours = clock.measure {
                for _ in 0..<repeats {
                    let doc = try! SFFReader.read(bytes)
                    outputSize = PDFWriter.write(doc.pages, title: "bench").count
                }
            }
            let oursSeconds = Double(ours.components.seconds) + Double(ours.components.attoseconds) / 1e18
            print("input: \(sffPath) — \(pages) pages, \(bytes.count) bytes")
            print(String(format: "faxgate SFF→PDF:            %8.1f pages/s  (%d runs, %.4f s per document, PDF %d bytes)",
                         Double(pages * repeats) / oursSeconds, repeats, oursSeconds / Double(repeats), outputSize))

            // The classic chain: sfftobmp to multi-page TIFF G4, then tiff2pdf.
            let chainRuns = max(1, min(repeats, 5))
            let chain = try clock.measure {
                for i in 0..<chainRuns {
                    try BenchInput.run("/usr/bin/sfftobmp", ["-q", "-t4", sffPath, "-o", "\(work)/chain\(i).tif"])
                    try BenchInput.run("/usr/bin/tiff2pdf", ["-o", "\(work)/chain\(i).pdf", "\(work)/chain\(i).tif"])
                }
            }
            let chainSeconds = Double(chain.components.seconds) + Double(chain.components.attoseconds) / 1e18
            print(String(format: "sfftobmp + tiff2pdf:        %8.1f pages/s  (%d runs, %.4f s per document)",
                         Double(pages * chainRuns) / chainSeconds, chainRuns, chainSeconds / Double(chainRuns)))
        }
    }
}

extension Bench {
    struct PDFToSFF: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pdf-to-sff",
            abstract: "PDF → fax pages → SFF seconds per page, ours (sandboxed gs + SFF writer) vs. bare gs -sDEVICE=cfax.")
        @Option(help: "PDF to convert (default: a 10-page text document made with Ghostscript).") var input: String?
        @Option(help: "Repetitions.") var repeats = 3

        func run() async throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-bench-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            let path: String
            if let input { path = input } else {
                _ = try BenchInput.makeSFF(in: work, pages: 10)
                try BenchInput.run("/usr/bin/gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
                                                   "-sOutputFile=\(work)/bench.pdf", "\(work)/bench.ps"])
                path = "\(work)/bench.pdf"
            }
            let result = try await RenderBench.pdfToSFF(path: path, options: RenderOptions(), repetitions: repeats)
            print("input: \(path)")
            print(String(format: "faxgate PDF→SFF:            %8.4f s/page", result.oursPerPage))
            print(String(format: "gs -sDEVICE=cfax:           %8.4f s/page", result.ghostscriptCfaxPerPage))
            print(result.description)
        }
    }
}

enum BenchInput {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw Failure(description: "\(tool) exited \(p.terminationStatus)") }
    }

    /// A text-heavy multi-page document, the typical office fax, rendered by Ghostscript's cfax device.
    static func makeSFF(in dir: String, pages: Int) throws -> String {
        var ps = "%!PS\n/Times-Roman findfont 11 scalefont setfont\n"
        for page in 1...pages {
            ps += "72 780 moveto (Faxgate benchmark page \(page)) show\n"
            for line in 0..<55 {
                ps += "72 \(760 - line * 12) moveto (Line \(line): The quick brown fox jumps over the lazy dog 0123456789 \(page)) show\n"
            }
            ps += "showpage\n"
        }
        try ps.write(toFile: "\(dir)/bench.ps", atomically: true, encoding: .utf8)
        try run("/usr/bin/gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=cfax", "-r204x196", "-sPAPERSIZE=a4",
                                "-sOutputFile=\(dir)/bench.sff", "\(dir)/bench.ps"])
        return "\(dir)/bench.sff"
    }
}
