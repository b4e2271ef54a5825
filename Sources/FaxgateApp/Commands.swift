import ArgumentParser
import FaxgateCore
import FaxgateWeb
import Foundation
import Logging

/// `faxgate` — the gateway daemon and its admin tools.
///
/// SECURITY: `serve` runs as an unprivileged user (see contrib/faxgate.service); it needs the CAPI device or
/// the rcapi host, its spool directory, and network access to the configured SMTP server only. The admin
/// commands only read the configuration and the database; they never write to it.
public struct FaxgateCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "faxgate",
        abstract: "Fax and voicemail to e-mail gateway.",
        version: FaxgateVersion.string,
        subcommands: [Serve.self, ConfigCommand.self, Journal.self, Show.self, Send.self, Queue.self, Cancel.self, Resend.self,
                      Version.self, Bench.self, RetentionCommand.self, SnapshotCommand.self, GDPRCommand.self, Render.self,
                      IntakeCommand.self, UserCommand.self, AuditCommand.self, StorageCommand.self])
    public init() {}
}

struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .long], help: "Configuration file (default: $FAXGATE_CONFIG or /etc/faxgate/faxgate.yaml).")
    var config: String?

    var path: String { config ?? ProcessInfo.processInfo.environment["FAXGATE_CONFIG"] ?? "/etc/faxgate/faxgate.yaml" }

    /// Loads or prints every problem and exits 78 (EX_CONFIG), as sysexits.h says for configuration errors.
    func loadOrExit() throws -> Configuration {
        do {
            return try ConfigLoader.load(path: path)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(78)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway until SIGTERM.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try options.loadOrExit()
        let redactor = try PluginRegistry.redactor(config, createKey: true)
        let logFiles = config.log.files ? DailyLogFiles(directory: config.logDirectory) : nil
        let level = Logger.Level(rawValue: config.log.level) ?? .info
        let redactFrom = Logger.Level(rawValue: config.log.redactFrom) ?? .info
        LoggingSystem.bootstrap { label in
            RedactingLogHandler(label: label, level: level, redactor: redactor, redactFrom: redactFrom, files: logFiles)
        }
        var logger = Logger(label: "faxgate")
        logger.logLevel = level
        // What `config check` warns about (authentication off, a missing admin address …) is said at every start
        // too: an admin who never ran the check still finds it in the log.
        for warning in ConfigLoader.warnings(config, file: options.path) {
            logger.warning("configuration: \(warning)")
        }
        // Metrics go to the Prometheus registry `/metrics` serves; once per process, only in the daemon.
        MetricsEndpoint.bootstrap()
        // Office settings: the stored document or the file, by the three-way rule (README "Settings: file and web").
        let effective = try await OfficeSettingsCLI.effectiveForServe(config, path: options.path, logger: logger)
        try await Gateway(config: effective, logger: logger, configPath: options.path).run()
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Work with the configuration.",
                                                    subcommands: [Check.self, Export.self, Import.self])
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the configuration; print each problem with its line.")
        @OptionGroup var options: ConfigOption
        func run() async throws {
            let fileConfig = try options.loadOrExit()
            // The office settings in force (stored, or the file's) are checked by the same rules; a conflict errs.
            let office = await OfficeSettingsCLI.check(fileConfig, path: options.path)
            let config = office.config
            var problems: [String] = office.problems
            if !PluginRegistry.storageDrivers.contains(config.storage.driver) {
                problems.append("storage.driver: unknown storage plugin '\(config.storage.driver)'")
            }
            do { _ = try PluginRegistry.redactor(config) } catch { problems.append("log.redaction: \(error)") }
            if let ca = config.smtp.caFile, !FileManager.default.isReadableFile(atPath: ca) {
                problems.append("smtp.ca_file: cannot read \(ca)")
            }
            // Inline secrets are judged where they are: in the file (stored office settings are not in it).
            problems += ConfigValidator.secretFileProblems(configPath: options.path, config: fileConfig)
            let sandbox = RenderSandboxCheck.problems(config)
            problems += sandbox.errors
            for warning in sandbox.warnings { FileHandle.standardError.write(Data("\(options.path): warning: \(warning)\n".utf8)) }
            for warning in ConfigLoader.warnings(config, file: options.path) {
                FileHandle.standardError.write(Data("\(options.path): \(warning)\n".utf8))
            }
            if !problems.isEmpty {
                FileHandle.standardError.write(Data(problems.map { "\(options.path): \($0)\n" }.joined().utf8))
                throw ExitCode(78)
            }
            if !office.note.isEmpty { print(office.note) }
            print("\(options.path): OK — \(config.extensions.count) extension(s), transport capi/\(config.capi.driver), storage \(config.storage.driver), SMTP \(config.smtp.host):\(config.smtp.port) (\(config.smtp.security))")
        }
    }
}

struct Journal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recent calls, newest first (like faxstat -r).")
    @OptionGroup var options: ConfigOption
    @Option(name: .shortAndLong, help: "How many calls to list.") var limit = 50
    @Flag(help: "One JSON object per line instead of a table.") var json = false

    func run() async throws {
        let config = try options.loadOrExit()
        let storage = try PluginRegistry.storage(config, readOnly: true)
        let calls = try await storage.recentCalls(limit: limit)
        if json { return try TextOutput.printJSONLines(calls) }
        print(JournalTable.render(calls, numbers: PartyNumberFormat(line: config.outgoing.line)))
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one call with its history (like postcat).")
    @OptionGroup var options: ConfigOption
    @Argument(help: "Call reference (the number in the journal and in the mail).") var id: Int64

    func run() async throws {
        let config = try options.loadOrExit()
        let storage = try PluginRegistry.storage(config, readOnly: true)
        guard let call = try await storage.call(id: id) else {
            FileHandle.standardError.write(Data("no call #\(id)\n".utf8))
            throw ExitCode(1)
        }
        let numbers = PartyNumberFormat(line: config.outgoing.line)
        print(JournalTable.render([call], numbers: numbers))
        print("")
        for line in JournalTable.details(call, numbers: numbers) { print(line) }
        print("")
        for event in try await storage.events(callID: id) {
            print("\(JournalTable.time(event.at))  \(event.text)")
        }
        for doc in try await storage.documents(callID: id) {
            print("document: \(doc.filename) (\(doc.kind), \(doc.bytes.count) bytes)")
        }
    }
}

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version of faxgate and its libraries.")
    func run() async throws {
        print("faxgate \(FaxgateVersion.string)")
        for line in LibraryVersions.lines() { print("  \(line)") }
    }
}

enum JournalTable {
    static func time(_ d: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f.string(from: d)
    }

    /// A number for the table: E.164 grouped when its type tells, as received otherwise; never a withheld one.
    static func number(_ n: PartyNumber?, _ numbers: PartyNumberFormat) -> String {
        guard let n else { return "-" }
        switch n.presentation {
        case .restricted: return "withheld"
        case .unavailable: return "unavailable"
        case .allowed: break
        }
        let shown = numbers.international(n) ?? PartyNumberFormat.cleaned(n.digits)
        return shown.isEmpty ? "-" : shown
    }

    /// `show`: the numbers in both forms and the typed facts of the call.
    static func details(_ c: CallRecord, numbers: PartyNumberFormat) -> [String] {
        func typed(_ n: PartyNumber?) -> String {
            guard let n, n.presentation == .allowed, !n.digits.isEmpty else { return number(n, numbers) }
            return numbers.text(n, language: "en") + " (type \(n.type.rawValue))"
        }
        return [
            "caller:       \(typed(c.caller))",
            "called:       \(typed(c.called))",
            "presentation: \(c.callingPresentation?.rawValue ?? "-")",
            "ecm:          \(c.ecm.map { $0 ? "yes" : "no" } ?? "unknown")",
            "end cause:    \(c.endCause?.rawValue ?? "-")",
        ] + engineDetails(engine: c.engine, compression: c.compression, ecmRetransmittedFrames: c.ecmRetransmittedFrames,
                          failure: c.t30Failure, direction: c.direction, pages: c.pageStatistics)
    }

    /// What the fax engine reported (issue 10): engine, compression, ECM frames resent, the T.30 failure as our
    /// sentence with the engine's code and words for support, and one line per page.
    static func engineDetails(engine: FaxEngineKind?, compression: FaxCompression?, ecmRetransmittedFrames: Int?, failure: T30Failure?,
                              direction: CallRecord.Direction, pages: [FaxPageStatistics]) -> [String] {
        var lines = [
            "engine:       \(engine?.rawValue ?? "-")",
            "compression:  \(compression?.rawValue ?? "-")",
            "ecm resent:   \(ecmRetransmittedFrames.map { "\($0) frame(s)" } ?? "-")",
            "t30 failure:  " + (failure.map {
                "\($0.kind.rawValue): \($0.reason(direction, language: "en")) (code \($0.code)"
                    + ($0.text.isEmpty ? ")" : ": \(PartyNumberFormat.cleaned($0.text)))")
            } ?? "-"),
        ]
        for p in pages {
            let parts: [String?] = [
                p.bitRate.map { "\($0) bit/s" }, p.compression?.rawValue, p.fine.map { $0 ? "fine" : "normal" },
                p.ecm.map { $0 ? "ECM" : "no ECM" }, p.ecmRetransmittedFrames.map { "\($0) resent" }, p.badRows.map { "\($0) bad rows" },
            ]
            lines.append("page \(p.page):".padding(toLength: 14, withPad: " ", startingAt: 0) + parts.compactMap { $0 }.joined(separator: ", "))
        }
        return lines
    }

    static func render(_ calls: [CallRecord], numbers: PartyNumberFormat = PartyNumberFormat(line: LineConfig())) -> String {
        var rows = [["ID", "STARTED", "DIR", "CALLER", "CALLED", "EXTENSION", "PAGES", "OUTCOME", "STATE", "REASON"]]
        for c in calls {
            rows.append([
                "\(c.id ?? 0)", time(c.startedAt), c.direction == .incoming ? "in" : "out", number(c.caller, numbers), number(c.called, numbers),
                c.extensionName ?? "-", c.pages.map(String.init) ?? "-", c.outcome?.rawValue ?? "-", c.state.rawValue,
                c.t30Failure.map { $0.reason(c.direction, language: "en") } ?? c.reasonText ?? "",
            ])
        }
        return TextOutput.table(rows)
    }
}

/// Plain-text tables and JSON lines, the two output forms of the admin commands.
enum TextOutput {
    /// Columns padded to their widest cell; the last column is left ragged.
    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        let widths = (0..<first.count).map { i in rows.map { $0[i].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// One JSON object per line, keys sorted, ISO 8601 dates — for scripts.
    static func printJSONLines<T: Encodable>(_ items: [T]) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        for item in items { print(String(decoding: try encoder.encode(item), as: UTF8.self)) }
    }
}
