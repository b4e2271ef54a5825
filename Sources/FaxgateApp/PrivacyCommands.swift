import ArchiveExport
import ArgumentParser
import BasicRedaction
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import FaxgateWeb
import SupportSnapshot

/// Builds the privacy parts from the configuration: redactors with pseudonyms, retention categories, the
/// engine. One place, so `serve` and the admin commands use exactly the same rules.
enum PrivacyAssembly {
    static func pseudonymizer(_ config: Configuration, createKey: Bool) throws -> Pseudonymizer? {
        guard config.privacy.pseudonyms else { return nil }
        // Without a key (config check before the first start) a throw-away key still exercises the rules.
        let key = try Pseudonymizer.installationKey(spoolDirectory: config.spoolDirectory, create: createKey) ?? Pseudonymizer.randomKey()
        return Pseudonymizer(key: key, countryCode: config.privacyCountryCode)
    }

    static func logRedactor(_ config: Configuration, createKey: Bool) throws -> Redactor {
        Redactor(try BasicRedaction.ruleSets(named: config.log.redaction, pseudonyms: pseudonymizer(config, createKey: createKey),
                                             privacy: config.privacy))
    }

    /// Writable storage with the privacy tables. Retention and erasure need a storage plugin with the privacy
    /// capability (`PrivacyStorage`; the embedded SQLite has it).
    static func privacyStorage(_ config: Configuration) async throws -> any PrivacyStorage {
        let storage = try PluginRegistry.storage(config)
        guard let privacy = storage as? any PrivacyStorage else {
            throw ValidationFailure("retention and GDPR commands need a storage driver with privacy support (sqlite)")
        }
        try await storage.migrate()
        try await privacy.migratePrivacy()
        return privacy
    }

    /// Every retention category this build implements: the storage plugin's own, then the file categories. Add
    /// new categories in the plugin's `retentionCategories` or here (see RetentionCategory).
    static func categories(_ config: Configuration, storage: any PrivacyStorage) -> [any RetentionCategory] {
        storage.retentionCategories(spoolDirectory: config.spoolDirectory, countryCode: config.privacyCountryCode) + [
            LogFilesCategory(directory: config.logDirectory),
            SnapshotsCategory(directory: config.snapshotDirectory),
        ]
    }

    static func engine(_ config: Configuration, storage: any PrivacyStorage, logger: Logger) -> RetentionEngine {
        RetentionEngine(
            categories: categories(config, storage: storage), settings: config.retention,
            configHolds: config.privacy.legalHolds.compactMap { SubjectID($0, countryCode: config.privacyCountryCode) },
            holdStore: storage, audit: storage,
            exporter: config.retention.exportBeforeDelete ? DirectoryArchiveExporter(directory: config.archiveDirectory) : nil,
            logger: logger)
    }

    /// The service `serve` runs, or nil when the storage is not the embedded one.
    static func retentionService(_ config: Configuration, storage: any Storage, logger: Logger,
                                 live: LiveConfiguration? = nil) async throws -> RetentionService? {
        guard let privacy = storage as? any PrivacyStorage else {
            logger.warning("retention needs a storage driver with privacy support (sqlite); nothing will expire")
            return nil
        }
        try await privacy.migratePrivacy()
        return RetentionService(engine: engine(config, storage: privacy, logger: logger),
                                interval: .seconds(config.retention.runEveryHours * 3600), logger: logger, live: live)
    }

    static func subject(_ text: String, _ config: Configuration) throws -> SubjectID {
        guard let s = SubjectID(text, countryCode: config.privacyCountryCode) else {
            throw ValidationFailure("'\(text)' is neither a telephone number nor an e-mail address")
        }
        return s
    }

    /// A logger for the admin commands: stderr only, same redaction as serve.
    static func cliLogger(_ config: Configuration) -> Logger {
        let redactor = (try? logRedactor(config, createKey: false)) ?? Redactor([])
        var logger = Logger(label: "faxgate.privacy") { RedactingLogHandler(label: $0, level: .info, redactor: redactor, redactFrom: .trace) }
        logger.logLevel = .info
        return logger
    }
}

// MARK: - faxgate retention

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retention", abstract: "Delete data past its retention period.",
                                                    subcommands: [Run.self, Audit.self])
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run retention once (serve also runs it on a schedule).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Only report what would be deleted; change nothing.") var dryRun = false
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let config = try options.loadOrExit()
            let storage = try await PrivacyAssembly.privacyStorage(config)
            let report = try await PrivacyActions.retentionRun(config, storage: storage, logger: PrivacyAssembly.cliLogger(config), dryRun: dryRun)
            if json {
                let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
                print(String(decoding: try e.encode(report), as: UTF8.self))
            } else {
                print(report.render(), terminator: "")
            }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the audit trail of deletions (counts only).")
        @OptionGroup var options: ConfigOption
        @Option(name: .shortAndLong) var limit = 50
        @Flag var json = false
        func run() async throws {
            let config = try options.loadOrExit()
            let storage = try await PrivacyAssembly.privacyStorage(config)
            let records = try await storage.auditRecords(limit: limit)
            if json {
                let e = JSONEncoder(); e.dateEncodingStrategy = .iso8601; e.outputFormatting = [.sortedKeys]
                for r in records { print(String(decoding: try e.encode(r), as: UTF8.self)) }
                return
            }
            for r in records {
                print("\(JournalTable.time(r.at))  \(r.action)  \(r.category): \(r.items) item(s), \(r.rows) row(s), \(r.files) file(s), \(r.bytes) bytes, \(r.held) held, \(r.exported) exported")
            }
        }
    }
}

// MARK: - faxgate snapshot

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snapshot", abstract: "Encrypted, redacted support snapshots.",
                                                    subcommands: [Create.self, List.self, Delete.self])

    static func parseDay(_ text: String?, endOfDay: Bool) throws -> Date? {
        do { return try PrivacyActions.snapshotDay(text, endOfDay: endOfDay) } catch let bad as BadSnapshotDay {
            throw ValidationFailure(bad.description)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write an AES-256 ZIP for support; prints its passphrase once.")
        @OptionGroup var options: ConfigOption
        @Option(help: "First day of logs to include (YYYY-MM-DD, UTC).") var from: String?
        @Option(help: "Last day of logs to include (YYYY-MM-DD, UTC).") var to: String?
        @Flag(help: "Mail the archive to snapshot.support_address and the passphrase to snapshot.passphrase_address (never queued).") var mail = false
        @Flag(help: "No progress lines.") var quiet = false

        func run() async throws {
            let config = try options.loadOrExit()
            if mail, config.snapshot.supportAddress == nil { throw ValidationFailure("--mail needs snapshot.support_address") }
            let result = try await SnapshotCommand.create(config: config, configPath: options.path, from: try parseDay(from, endOfDay: false),
                                                          to: try parseDay(to, endOfDay: true), quiet: quiet)
            print("snapshot: \(result.path) (\(result.info.bytes) bytes, \(result.info.entries) files)")
            print("passphrase (shown once, not stored): \(result.passphrase)")
            if mail {
                let outcome = try await SnapshotMail.send(result, config: config)
                if outcome.archiveSent { print("archive mailed to \(config.snapshot.supportAddress ?? "")") }
                if outcome.passphraseSent {
                    print("passphrase mailed separately to \(config.snapshot.passphraseAddress ?? "")")
                } else if outcome.archiveSent && config.snapshot.passphraseAddress == nil {
                    print("passphrase not mailed (no snapshot.passphrase_address): pass it on by phone or another channel")
                }
                for failure in outcome.failures { FileHandle.standardError.write(Data("error: \(failure); nothing was queued\n".utf8)) }
                if !outcome.failures.isEmpty { throw ExitCode(75) }  // EX_TEMPFAIL: try --mail again later
            }
        }
    }

    static func create(config: Configuration, configPath: String, from: Date?, to: Date?, quiet: Bool) async throws -> SnapshotResult {
        // Read-only: the snapshot only counts rows, and `serve` may be writing.
        let storage = (try? PluginRegistry.storage(config, readOnly: true)) as? any PrivacyStorage
        let progress: @Sendable (String, Int64, Int64) -> Void = { file, done, total in
            let pct = total > 0 ? Int(done * 100 / total) : 100
            FileHandle.standardError.write(Data("redacting logs: \(file) — \(done / 1_048_576)/\(total / 1_048_576) MiB (\(pct)%)\n".utf8))
        }
        return try await PrivacyActions.createSnapshot(config, configPath: configPath, from: from, to: to, storage: storage,
                                                       progress: quiet ? nil : progress)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List support snapshots.")
        @OptionGroup var options: ConfigOption
        func run() async throws {
            let config = try options.loadOrExit()
            let iso = ISO8601DateFormatter()
            let list = SnapshotInfo.list(in: config.snapshotDirectory)
            if list.isEmpty { print("no snapshots in \(config.snapshotDirectory)") }
            for s in list {
                let period = [s.from, s.to].map { $0.map { iso.string(from: $0) } ?? "…" }.joined(separator: " – ")
                print("\(s.name)  created \(iso.string(from: s.createdAt))  \(s.bytes) bytes  logs \(period)\(s.mailedTo.map { "  mailed to \($0)" } ?? "")")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a support snapshot (and its sidecar).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Snapshot name as `snapshot list` prints it.") var name: String
        func run() async throws {
            let config = try options.loadOrExit()
            let base = (name as NSString).lastPathComponent.replacingOccurrences(of: ".zip", with: "")
            guard PrivacyActions.snapshotPath(named: base, config) != nil else {
                throw ValidationFailure("no snapshot named \(base) in \(config.snapshotDirectory)")
            }
            let counts = try await PrivacyActions.deleteSnapshot(named: base, config, storage: try? await PrivacyAssembly.privacyStorage(config))
            print("deleted \(base) (\(counts.files) files, \(counts.bytes) bytes)")
        }
    }
}

/// Sends a snapshot to support: the archive to `snapshot.support_address`, the passphrase — separately — to
/// `snapshot.passphrase_address` (never the same mailbox), so one misdirected or intercepted mail is not enough.
/// Both go directly over SMTP and nothing is queued: an outbox copy would put the passphrase on disk next to the
/// archive. A mail that cannot be sent is reported; the passphrase stays on the admin's screen only.
enum SnapshotMail {
    struct Outcome { var archiveSent: Bool; var passphraseSent: Bool; var failures: [String] }

    static func send(_ result: SnapshotResult, config: Configuration) async throws -> Outcome {
        guard let support = config.snapshot.supportAddress else { throw ValidationFailure("snapshot.support_address is not set") }
        guard !config.snapshot.passphraseGoesWithArchive else {
            throw ValidationFailure("snapshot.passphrase_address equals snapshot.support_address: archive and passphrase never go to the same mailbox")
        }
        guard let from = MailboxSyntax.address(in: config.mail.from) else { throw ValidationFailure("mail.from is not an address") }
        let hostname = config.hostname ?? "localhost"
        let sender = SMTPMailSender(settings: try Gateway.smtpSettings(config))
        let envelopeFrom = config.mail.envelopeFrom ?? from.address
        var outcome = Outcome(archiveSent: false, passphraseSent: false, failures: [])

        let archive = MailMessage(
            from: MailAddress(from.address, displayName: from.name), to: [MailAddress(support)],
            subject: "faxgate support snapshot \(result.info.name)", messageID: MailMessage.makeMessageID(domain: hostname),
            extraHeaders: [("Auto-Submitted", "auto-generated")],
            textBody: "Encrypted support snapshot (AES-256 ZIP). The passphrase reaches you separately.\n",
            attachments: [MailAttachment(filename: "\(result.info.name).zip", contentType: "application/zip",
                                         data: [UInt8](try Data(contentsOf: URL(fileURLWithPath: result.path))))])
        do {
            try await sender.send(envelopeFrom: envelopeFrom, recipients: [support], message: archive.render())
            outcome.archiveSent = true
        } catch {
            outcome.failures.append("archive not mailed to \(support): \(error)")
        }
        // The passphrase only after the archive went out, and only to its own address.
        if outcome.archiveSent, let secretTo = config.snapshot.passphraseAddress {
            let secret = MailMessage(
                from: MailAddress(from.address, displayName: from.name), to: [MailAddress(secretTo)],
                subject: "faxgate support snapshot \(result.info.name): passphrase", messageID: MailMessage.makeMessageID(domain: hostname),
                extraHeaders: [("Auto-Submitted", "auto-generated")],
                textBody: "Passphrase for \(result.info.name).zip (the archive was sent separately):\n\n\(result.passphrase)\n")
            do {
                try await sender.send(envelopeFrom: envelopeFrom, recipients: [secretTo], message: secret.render())
                outcome.passphraseSent = true
            } catch {
                outcome.failures.append("passphrase not mailed to \(secretTo): \(error)")
            }
        }
        if outcome.archiveSent {
            var info = result.info
            info.mailedTo = support
            try DurableFile.write([UInt8](try SnapshotInfo.encoder.encode(info)), to: "\(config.snapshotDirectory)/\(info.name).json", mode: 0o600)
        }
        return outcome
    }
}

// MARK: - faxgate gdpr

struct GDPRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gdpr", abstract: "Record of processing, subject access, erasure and legal holds.",
        subcommands: [Record.self, Export.self, Erase.self, Hold.self, Release.self, Holds.self])

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the Art. 30 record of processing for this installation.")
        @OptionGroup var options: ConfigOption
        @Option(help: "md or json") var format = "md"
        @Option(help: "de or en") var language = "de"
        func run() async throws {
            let config = try options.loadOrExit()
            guard ["md", "json"].contains(format), ["de", "en"].contains(language) else {
                throw ValidationFailure("--format md|json, --language de|en")
            }
            let record = await PrivacyActions.record(config, storage: (try? PluginRegistry.storage(config, readOnly: true)) as? any PrivacyStorage)
            print(format == "json" ? try record.json(language: language) : record.markdown(language: language))
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write everything stored about one person into an encrypted ZIP.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Telephone number or e-mail address.") var subject: String
        @Option(help: "Output file (default: ./faxgate-export-<time>.zip).") var output: String?

        func run() async throws {
            let config = try options.loadOrExit()
            let who = try PrivacyAssembly.subject(subject, config)
            let storage = try await PrivacyAssembly.privacyStorage(config)
            let stamp = Int(Date().timeIntervalSince1970)
            let path = output ?? FileManager.default.currentDirectoryPath + "/faxgate-export-\(stamp).zip"
            let result = try await PrivacyActions.export(who, to: path, config, storage: storage, logger: PrivacyAssembly.cliLogger(config))
            print("export: \(result.path) (\(result.items) item(s))")
            print("passphrase (shown once, not stored): \(result.passphrase)")
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete everything stored about one person (items under legal hold stay).")
        @OptionGroup var options: ConfigOption
        @Option(help: "Telephone number or e-mail address.") var subject: String
        @Flag(help: "Only report what would be deleted.") var dryRun = false
        func run() async throws {
            let config = try options.loadOrExit()
            let who = try PrivacyAssembly.subject(subject, config)
            let storage = try await PrivacyAssembly.privacyStorage(config)
            switch try await PrivacyActions.erase(who, dryRun: dryRun, config, storage: storage, logger: PrivacyAssembly.cliLogger(config)) {
            case .refused(let hold):
                let why = hold.fromConfiguration ? "privacy.legal_holds in the configuration" : "gdpr hold" + (hold.reason.isEmpty ? "" : ": \(hold.reason)")
                throw ValidationFailure("refused: \(who) is under legal hold (\(why)); nothing was erased")
            case .done(let report, let files):
                print(report.render().replacingOccurrences(of: "retention", with: "erase"), terminator: "")
                if report.lines.isEmpty { print("nothing stored about this subject") }
                let held = report.lines.reduce(0) { $0 + $1.held }
                if held > 0 { print("\(held) item(s) kept: legal hold") }
                if files > 0 { print("pseudonym removed from \(files) log file(s)") }
            }
        }
    }

    struct Hold: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a subject under legal hold: retention and erasure skip their data.")
        @OptionGroup var options: ConfigOption
        @Option var subject: String
        @Option(help: "Why (case number …); stored with the hold.") var reason = ""
        func run() async throws {
            let config = try options.loadOrExit()
            let who = try PrivacyAssembly.subject(subject, config)
            let storage = try await PrivacyAssembly.privacyStorage(config)
            try await PrivacyActions.addHold(who, reason: reason, storage: storage)
            print("legal hold set for \(who)")
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a legal hold set with `gdpr hold`.")
        @OptionGroup var options: ConfigOption
        @Option var subject: String
        func run() async throws {
            let config = try options.loadOrExit()
            let who = try PrivacyAssembly.subject(subject, config)
            let storage = try await PrivacyAssembly.privacyStorage(config)
            guard try await PrivacyActions.releaseHold(who, storage: storage) else { throw ValidationFailure("no hold for \(who) (holds in the configuration stay)") }
            print("legal hold released for \(who)")
        }
    }

    struct Holds: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List legal holds (configuration and database).")
        @OptionGroup var options: ConfigOption
        func run() async throws {
            let config = try options.loadOrExit()
            let storage = try await PrivacyAssembly.privacyStorage(config)
            for h in try await PrivacyActions.holds(config, storage: storage) {
                print("\(h.subject)  (\(h.fromConfiguration ? "configuration" : "gdpr hold")\(h.reason.isEmpty ? "" : ": " + h.reason))")
            }
        }
    }
}

// MARK: - faxgate bench snapshot

struct SnapshotBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Snapshot throughput (MB/s of logs redacted + encrypted) next to `zip -e` alone.")
    @Option(help: "MiB of synthetic log lines to generate.") var megabytes = 20

    func run() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-bench-snapshot-\(getpid())").path
        let logs = work + "/log"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // Realistic lines: timestamps, call ids, numbers in several notations, addresses, station ids.
        let samples = [
            "info faxgate.capi: incoming call from=+49 30 1234567 to=100 cip=17",
            "info faxgate.reception: [%d] answering fax call extension=Empfang from=030/1234567",
            "info faxgate.reception: [%d] fax session up rate=14400 tsi=\"PRAXIS MUELLER\"",
            "info faxgate.outbox: [%d] mail delivered to SMTP server outbox=1700000000-1234 recipients=1 to=empfang@example.com",
            "debug faxgate.capi: DATA_B3_IND len=2048 ncci=0x00010101",
            "notice faxgate.reception: call rejected: no extension for called number 0049 89 98765-43",
        ]
        var text = ""
        var n = 0
        let perFile = megabytes * 1_048_576 / 4
        for day in 1...4 {
            text = ""
            while text.utf8.count < perFile {
                n += 1
                text += "2025-01-0\(day)T10:00:00.000Z " + String(format: samples[n % samples.count], n) + "\n"
            }
            try text.write(toFile: "\(logs)/faxgate-2025-01-0\(day).log", atomically: true, encoding: .utf8)
        }
        let total = Double(megabytes * 1_048_576)
        let pseudonyms = Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49")
        let request = SnapshotRequest(
            configText: "spool_directory: /x\n", logDirectory: logs, outputDirectory: work + "/out", from: nil, to: nil,
            versions: ["faxgate \(FaxgateVersion.string)"], capiInfo: "bench", statistics: [:],
            redactor: try BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: PrivacySettings()), redactionRules: BasicRedaction.names)
        let clock = ContinuousClock()
        let ours = try clock.measure { _ = try SnapshotBuilder.create(request) }
        let zipSeconds = try clock.measure {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/zip")
            p.arguments = ["-q", "-r", "-P", Passphrase.generate(), work + "/plain.zip", "log"]
            p.currentDirectoryURL = URL(fileURLWithPath: work)
            try p.run(); p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw ValidationFailure("zip failed (install the zip package)") }
        }
        func s(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        print(String(format: "logs: %d MiB in 4 daily files", megabytes))
        print(String(format: "faxgate snapshot (redact + AES-256 ZIP): %8.1f MB/s  (%.2f s)", total / 1e6 / s(ours), s(ours)))
        print(String(format: "zip -e alone (ZipCrypto, no redaction): %8.1f MB/s  (%.2f s)", total / 1e6 / s(zipSeconds), s(zipSeconds)))
    }
}
