import ArgumentParser
import FaxgateCore
import Foundation

/// HylaFAX-style queue tools. They hand requests to the daemon through `<spool>/drop/` and print its answer;
/// they never write to the database themselves.
struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Queue a fax (like sendfax): faxgate send --to 030 1234567 brief.pdf")
    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "Fax number; repeat for several recipients.") var to: [String]
    @Option(name: .long, help: "Extension whose number and station id the fax carries (default: the first).") var `extension`: String?
    @Option(name: .long, help: "Send status mails with the send report to this address.") var notify: String?
    @Option(name: .long, help: "Subject for the cover page and the report.") var subject: String?
    @Option(name: .long, help: "fine (default) or normal.") var resolution: String?
    @Option(name: .long, help: "Send at this time (ISO 8601, e.g. 2026-11-23T08:00:00+01:00).") var at: String?
    @Flag(name: .long, help: "Add a cover page.") var cover = false
    @Argument(help: "Documents: PDF, PostScript, TIFF, JPEG, PNG or text.") var files: [String]

    func run() async throws {
        let config = try options.loadOrExit()
        var request = DropRequest(command: .send)
        request.numbers = to
        request.extensionName = self.extension ?? config.extensions.first?.name
        request.notify = notify
        request.subject = subject
        request.resolution = resolution
        request.cover = cover ? true : nil
        if let at {
            guard let date = ISO8601DateFormatter().date(from: at) else { throw ValidationError("--at: not an ISO 8601 time") }
            request.sendAt = date
        }
        let drop = DropClient(spool: config.spoolDirectory)
        var stored: [DropRequest.DropFile] = []
        for (n, path) in files.enumerated() {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            let name = "\(drop.id).\(n)"
            // A fresh file (O_EXCL, then rename): never written through a link someone placed under the name. The
            // daemon reads it only if it is a regular file owned by whoever owns the request (see DropDirectoryIntake).
            try DurableFile.write([UInt8](data), to: "\(drop.directory)/\(name)", mode: 0o640)
            stored.append(.init(name: (path as NSString).lastPathComponent, contentType: Self.contentType(path), stored: name))
        }
        request.files = stored
        try drop.submitAndWait(request)
    }

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "pdf": return "application/pdf"
        case "ps", "eps": return "application/postscript"
        case "tif", "tiff": return "image/tiff"
        case "jpg", "jpeg": return "image/jpeg"
        case "png": return "image/png"
        case "txt", "text": return "text/plain"
        default: return "application/octet-stream"
        }
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a queued fax (like faxrm).")
    @OptionGroup var options: ConfigOption
    @Argument var job: Int64
    func run() async throws { try DropClient.jobCommand(.cancel, job: job, options: options) }
}

struct Resend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Queue a finished fax again, to the same number.")
    @OptionGroup var options: ConfigOption
    @Argument var job: Int64
    func run() async throws { try DropClient.jobCommand(.resend, job: job, options: options) }
}

struct Queue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List outgoing faxes, newest first (like faxstat -s).",
                                                    subcommands: [Resolve.self])
    @OptionGroup var options: ConfigOption
    @Option(name: .shortAndLong) var limit = 50
    @Flag(help: "One JSON object per line.") var json = false
    func run() async throws {
        let config = try options.loadOrExit()
        let storage = try PluginRegistry.storage(config, readOnly: true)
        let jobs = try await storage.recentJobs(limit: limit)
        if json { return try TextOutput.printJSONLines(jobs) }
        var rows = [["JOB", "STATE", "NUMBER", "PAGES", "TRIES", "NEXT/LAST", "SENDER", "RESULT"]]
        for j in jobs {
            let when = j.state.isFinal ? (j.endedAt ?? j.createdAt) : max(j.nextAttemptAt, j.sendAt)
            rows.append(["\(j.id ?? 0)", j.state.rawValue, j.number, "\(j.pagesSent)/\(j.pages)", "\(j.tries)",
                         JournalTable.time(when), j.sender, j.lastText ?? ""])
        }
        print(TextOutput.table(rows))
        let uncertain = jobs.filter { $0.state == .uncertain }.count
        if uncertain > 0 {
            print("\(uncertain) uncertain (interrupted on the line; may have been sent partly): faxgate queue resolve <job> --resend|--resend-remaining|--done|--fail")
        }
    }

    /// The administrator's decision on an uncertain job (its node stopped during the call).
    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide an uncertain job: dial it again, send the pages not confirmed, or mark it done or failed.")
        @OptionGroup var options: ConfigOption
        @Argument var job: Int64
        @Flag(name: .long, help: "Dial the whole document again.") var resend = false
        @Flag(name: .long, help: "Send only the pages the remote had not confirmed, as a new job.") var resendRemaining = false
        @Flag(name: .long, help: "The remote got it: mark the job sent.") var done = false
        @Flag(name: .long, help: "Give up: mark the job failed.") var fail = false

        func validate() throws {
            guard [resend, resendRemaining, done, fail].filter({ $0 }).count == 1 else {
                throw ValidationError("give exactly one of --resend, --resend-remaining, --done, --fail")
            }
        }

        func run() async throws {
            let action: SendQueue.UncertainAction = resend ? .resend : resendRemaining ? .resendRemaining : done ? .done : .fail
            let config = try options.loadOrExit()
            var request = DropRequest(command: .resolve)
            request.jobID = job
            request.action = action.rawValue
            try DropClient(spool: config.spoolDirectory).submitAndWait(request)
        }
    }
}

/// Writes a request into the drop directory and waits for the daemon's answer.
struct DropClient {
    let directory: String
    let id = "\(Int(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max))"

    init(spool: String) { directory = spool + "/drop" }

    /// cancel / resend: one job id, the daemon's answer printed.
    static func jobCommand(_ command: DropRequest.Command, job: Int64, options: ConfigOption) throws {
        let config = try options.loadOrExit()
        var request = DropRequest(command: command)
        request.jobID = job
        try DropClient(spool: config.spoolDirectory).submitAndWait(request)
    }

    func submitAndWait(_ request: DropRequest, timeout: TimeInterval = 120) throws {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ValidationError("\(directory) does not exist: is faxgate serve running with this configuration?")
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try DurableFile.write([UInt8](try encoder.encode(request)), to: "\(directory)/\(id).json", mode: 0o660)
        let answerPath = "\(directory)/\(id).answer"
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: answerPath) {
                try? FileManager.default.removeItem(atPath: answerPath)
                let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                print(text)
                if text.hasPrefix("error") || text.hasPrefix("refused") || text.hasPrefix("not") { throw ExitCode(1) }
                return
            }
            usleep(100_000)
        }
        throw ValidationError("no answer from faxgate serve within \(Int(timeout)) s; the request stays in \(directory)")
    }
}
