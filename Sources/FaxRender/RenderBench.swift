// Measurement hook for `faxgate bench pdf-to-sff`: our PDF → pages → SFF against Ghostscript's own cfax
// device on the same file, so the cost of the bitmap round trip and MH encoding in Swift is visible.
import FaxDocument
import Foundation

public struct RenderBenchResult: Sendable, CustomStringConvertible {
    public var pages: Int
    /// Wall-clock seconds per page: render + SFFWriter.
    public var oursPerPage: Double
    /// Wall-clock seconds per page: `gs -sDEVICE=cfax` straight to SFF.
    public var ghostscriptCfaxPerPage: Double
    public var sffBytes: Int

    public var description: String {
        String(format: "%d pages: ours %.1f ms/page, gs cfax %.1f ms/page (%.2fx), SFF %d bytes",
               pages, oursPerPage * 1000, ghostscriptCfaxPerPage * 1000, oursPerPage / max(ghostscriptCfaxPerPage, 1e-9), sffBytes)
    }
}

public enum RenderBench {
    public static func pdfToSFF(path: String, options: RenderOptions = RenderOptions(), repetitions: Int = 3) async throws(RenderError) -> RenderBenchResult {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RenderError(.broken, "cannot read \(path)")
        }
        let bytes = [UInt8](data)
        var best = Double.infinity, pages = 0, sffBytes = 0
        for _ in 0..<max(1, repetitions) {
            let clock = ContinuousClock.now
            let rendered = try await FaxRenderer.render(.pdf(bytes), options: options)
            sffBytes = SFFWriter.write(rendered).count
            best = min(best, seconds(ContinuousClock.now - clock))
            pages = rendered.count
        }
        let cfax = try await offPool { () throws(RenderError) -> Double in
            let work = try WorkDirectory()
            var fastest = Double.infinity
            for _ in 0..<max(1, repetitions) {
                let clock = ContinuousClock.now
                let result = try Sandbox.run(
                    "gs", ["-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=cfax",
                           options.resolution == .fine ? "-r204x196" : "-r204x98", "-sOutputFile=\(work.file("gs.sff"))", path],
                    options: options, workDir: work.path)
                try Ghostscript.classify(result, producedOutput: true, what: "PDF", options: options)
                fastest = min(fastest, seconds(ContinuousClock.now - clock))
            }
            return fastest
        }
        let n = Double(max(1, pages))
        return RenderBenchResult(pages: pages, oursPerPage: best / n, ghostscriptCfaxPerPage: cfax / n, sffBytes: sffBytes)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
