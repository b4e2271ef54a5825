// The converter sandbox as the admin sees it: in the daemon's log at start, in `config check`, and
// `faxgate render` to convert one document exactly as mail → fax would (same sandbox, same policy).
import ArgumentParser
import FaxDocument
import FaxRender
import FaxgateCore
import Foundation
import Logging

extension Gateway {
    /// Says at start whether documents can be rendered, so a missing sandbox is found before the first refusal.
    static func logRenderSandbox(_ config: Configuration, logger: Logger) {
        let status = RenderSandbox.status
        if status.isolated { return }
        let why = status.problems.joined(separator: "; ")
        switch config.outgoing.renderSandbox {
        case .required:
            logger.error("render sandbox unavailable, mail → fax documents will be refused until it is fixed: \(why)")
        case .allowUnsandboxed:
            logger.warning("render sandbox unavailable, converters run WITHOUT it (outgoing.render_sandbox: allow_unsandboxed): \(why)")
        }
    }
}

enum RenderSandboxCheck {
    /// `config check` lines: an error where mail → fax is set up and the sandbox is required but missing,
    /// a warning where the admin allowed running without it or nothing is rendered anyway.
    static func problems(_ config: Configuration) -> (errors: [String], warnings: [String]) {
        let status = RenderSandbox.status
        guard !status.isolated else { return ([], []) }
        let why = status.problems.joined(separator: "; ")
        let rendersMail = !config.outgoing.mailboxes.isEmpty || !config.outgoing.faxDomains.isEmpty || !config.outgoing.subjectAddresses.isEmpty
        switch config.outgoing.renderSandbox {
        case .required where rendersMail:
            return (["outgoing.render_sandbox: the converter sandbox cannot be made, so every document would be refused: \(why)"], [])
        case .required:
            return ([], ["outgoing.render_sandbox: the converter sandbox cannot be made (documents would be refused): \(why)"])
        case .allowUnsandboxed:
            return ([], ["outgoing.render_sandbox: allow_unsandboxed and the sandbox cannot be made — converters run with network access or without limits: \(why)"])
        }
    }
}

struct Render: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a document to fax pages as mail → fax would (same sandbox and limits); write them as a PDF.")
    @OptionGroup var options: ConfigOption
    @Argument(help: "PDF, PostScript, TIFF, JPEG, PNG, GIF, text or HTML file.") var input: String
    @Option(name: [.short, .long], help: "Where to write the pages (PDF).") var output: String
    @Flag(help: "Normal resolution (98 lines per inch) instead of fine.") var normal = false

    func run() async throws {
        let config = try options.loadOrExit()
        guard let data = FileManager.default.contents(atPath: input) else {
            FileHandle.standardError.write(Data("cannot read \(input)\n".utf8))
            throw ExitCode(66)
        }
        let bytes = [UInt8](data)
        guard let document = FaxRenderer.detect(mimeType: "", filename: (input as NSString).lastPathComponent, bytes: bytes) else {
            FileHandle.standardError.write(Data("\(input): not a format the gateway can fax\n".utf8))
            throw ExitCode(65)
        }
        var renderOptions = RenderOptions(resolution: normal ? .normal : .fine)
        renderOptions.timeoutSeconds = config.outgoing.renderTimeoutSeconds
        renderOptions.memoryLimitMB = config.outgoing.renderMemoryMB
        renderOptions.maxPages = config.outgoing.maxPages
        renderOptions.sandbox = config.outgoing.renderSandbox
        do {
            let pages = try await FaxRenderer.render(document, options: renderOptions)
            try Data(PDFWriter.write(pages, title: nil)).write(to: URL(fileURLWithPath: output))
            print("\(input): \(pages.count) page(s) → \(output)")
        } catch let error as RenderError {
            let detail = error.kind == .sandboxUnavailable ? " (" + RenderSandbox.status.problems.joined(separator: "; ") + ")" : ""
            FileHandle.standardError.write(Data("\(input): \(error.description)\(detail)\n".utf8))
            throw ExitCode(error.kind == .sandboxUnavailable ? 69 : 65)
        }
    }
}
