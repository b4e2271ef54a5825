import ArchiveExport
import ArgumentParser
import BasicRedaction
import FaxgateCore
import Foundation
import Logging
import MailOut
import SQLiteStorage
import ServiceLifecycle
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

    /// Writable SQLite storage with the privacy tables. Retention and erasure need the embedded storage.
    static func sqlite(_ config: Configuration) async throws -> SQLiteStorage {
        guard let storage = try PluginRegistry.storage(config) as? SQLiteStorage else {
            throw ValidationFailure("retention and GDPR commands need storage.driver sqlite")
        }
        try await storage.migrate()
        try storage.migratePrivacy()
        return storage
    }

    /// Every retention category this build implements. Add new categories here (see RetentionCategory).
    static func categories(_ config: Configuration, storage: SQLiteStorage) -> [any RetentionCategory] {
        [
            ReceivedFaxesCategory(storage: storage, spoolDirectory: config.spoolDirectory, countryCode: config.privacyCountryCode),
            JournalCategory(storage: storage, spoolDirectory: config.spoolDirectory, countryCode: config.privacyCountryCode),
            SentFaxesCategory(storage: storage, spoolDirectory: config.spoolDirectory, countryCode: config.privacyCountryCode),
            VoicemailsCategory(storage: storage, spoolDirectory: config.spoolDirectory, countryCode: config.privacyCountryCode),
            RejectedMailsCategory(storage: storage, spoolDirectory: config.spoolDirectory),
            LogFilesCategory(directory: config.logDirectory),
            SnapshotsCategory(directory: config.snapshotDirectory),
        ]
    }

    static func engine(_ config: Configuration, storage: SQLiteStorage, logger: Logger) -> RetentionEngine {
        RetentionEngine(
            categories: categories(config, storage: storage), settings: config.retention,
            configHolds: config.privacy.legalHolds.compactMap { SubjectID($0, countryCode: config.privacyCountryCode) },
            holdStore: storage, audit: storage,
            exporter: config.retention.exportBeforeDelete ? DirectoryArchiveExporter(directory: config.archiveDirectory) : nil,
            logger: logger)
    }

    /// The service `serve` runs, or nil when the storage is not the embedded one.
    static func retentionService(_ config: Configuration, storage: any Storage, logger: Logger) throws -> RetentionService? {
        guard let sqlite = storage as? SQLiteStorage else {
            logger.warning("retention runs only with storage.driver sqlite; nothing will expire")
            return nil
        }
        try sqlite.migratePrivacy()
        return RetentionService(engine: engine(config, storage: sqlite, logger: logger),
                                interval: .seconds(config.retention.runEveryHours * 3600), logger: logger)
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
            let storage = try await PrivacyAssembly.sqlite(config)
            let report = try await PrivacyAssembly.engine(config, storage: storage, logger: PrivacyAssembly.cliLogger(config))
                .run(dryRun: dryRun)
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
            let storage = try await PrivacyAssembly.sqlite(config)
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
        guard let text else { return nil }
        guard let day = DailyLogFiles.day(ofFile: DailyLogFiles.prefix + text + DailyLogFiles.suffix) else {
            throw ValidationFailure("dates are YYYY-MM-DD, not '\(text)'")
        }
        return endOfDay ? day.addingTimeInterval(86_399) : day
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
        let configText = (try? String(contentsOfFile: configPath, encoding: .utf8)) ?? ""
        var statistics: [String: Int] = [:]
        if let storage = try? PluginRegistry.storage(config, readOnly: true) as? SQLiteStorage {
            statistics = (try? await storage.statistics()) ?? [:]
        }
        let outbox = config.spoolDirectory + "/outbox"
        statistics["outbox.pending"] = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { $0.hasSuffix(".json") }.count
        statistics["outbox.failed"] = ((try? FileManager.default.contentsOfDirectory(atPath: outbox + "/failed")) ?? []).filter { $0.hasSuffix(".json") }.count
        statistics["spool.incoming_files"] = ((try? FileManager.default.contentsOfDirectory(atPath: config.spoolDirectory + "/incoming")) ?? []).count
        let pseudonyms = try PrivacyAssembly.pseudonymizer(config, createKey: false)
            ?? Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: config.privacyCountryCode)
        let request = SnapshotRequest(
            configText: configText, logDirectory: config.logDirectory, outputDirectory: config.snapshotDirectory, from: from, to: to,
            versions: ["faxgate \(FaxgateVersion.string)"] + LibraryVersions.lines() + [ProcessInfo.processInfo.operatingSystemVersionString],
            capiInfo: capiInfo(config), statistics: statistics,
            redactor: try BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: config.privacy),
            redactionRules: BasicRedaction.names)
        let result = try SnapshotBuilder.create(request, progress: quiet ? nil : { file, done, total in
            let pct = total > 0 ? Int(done * 100 / total) : 100
            FileHandle.standardError.write(Data("redacting logs: \(file) — \(done / 1_048_576)/\(total / 1_048_576) MiB (\(pct)%)\n".utf8))
        })
        SpoolOwnership.adopt([config.snapshotDirectory, result.path, config.snapshotDirectory + "/\(result.info.name).json"],
                             spoolDirectory: config.spoolDirectory)
        return result
    }

    /// What we can say about the CAPI side without touching the line: the configured driver and the
    /// controller/profile lines `serve` logged at registration. A live query is not made on purpose: it would
    /// register a second CAPI application next to the running daemon on the same controller.
    static func capiInfo(_ config: Configuration) -> String {
        var out = "driver: \(config.capi.driver)\n"
        if let host = config.capi.host { out += "host: \(host):\(config.capi.port ?? 2662)\n" }
        out += "controllers configured: \(config.capi.controllers.isEmpty ? "all" : config.capi.controllers.map(String.init).joined(separator: ", "))\n"
        out += "answer 3.1 kHz audio as fax: \(config.capi.answerAudioAsFax)\n"
        out += "\nProfile not queried live: a second CAPI application would register next to the running daemon on the\n"
        out += "same controller. Registration lines logged by serve (controllers, profiles) follow:\n"
        for log in DailyLogFiles.files(in: config.logDirectory).suffix(7) {
            guard let text = try? String(contentsOfFile: log.path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.contains("CAPI registered") || line.contains("controller") {
                out += line + "\n"
            }
        }
        return out
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
            guard SnapshotInfo.list(in: config.snapshotDirectory).contains(where: { $0.name == base }) else {
                throw ValidationFailure("no snapshot named \(base) in \(config.snapshotDirectory)")
            }
            let category = SnapshotsCategory(directory: config.snapshotDirectory)
            let item = RetentionItem(category: category.name, id: base, createdAt: Date(),
                                     files: ["\(config.snapshotDirectory)/\(base).zip", "\(config.snapshotDirectory)/\(base).json"])
            let counts = try await category.delete([item])
            if let storage = try? await PrivacyAssembly.sqlite(config) {
                try await storage.append(AuditRecord(action: "delete", category: category.name, counts: counts))
            }
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
            var stored: Set<String> = []
            if let storage = try? PluginRegistry.storage(config, readOnly: true) as? SQLiteStorage {
                stored = (try? await storage.storedDataKinds()) ?? []
            }
            let record = ProcessingRecord(config: config, storedCategories: stored, categories: RetentionSettings.categories.map(\.key))
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
            let storage = try await PrivacyAssembly.sqlite(config)
            let engine = PrivacyAssembly.engine(config, storage: storage, logger: PrivacyAssembly.cliLogger(config))
            let stamp = Int(Date().timeIntervalSince1970)
            let path = output ?? FileManager.default.currentDirectoryPath + "/faxgate-export-\(stamp).zip"
            let passphrase = Passphrase.generate()
            let zip = try EncryptedZipWriter(path: path, passphrase: passphrase)
            var count = 0
            for (category, items) in try await engine.items(about: who) {
                for item in items {
                    for entry in try await category.exportEntries(for: item) {
                        let bytes: [UInt8]
                        switch entry.source {
                        case .bytes(let b): bytes = b
                        case .file(let f): bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f)))
                        }
                        try zip.add(name: "\(category.name)/\(entry.name)", bytes: bytes)
                    }
                    count += 1
                }
            }
            // Log lines carry pseudonyms, not numbers: the subject's pseudonym finds them.
            if let pseudonyms = try PrivacyAssembly.pseudonymizer(config, createKey: false) {
                let token = pseudonyms.token(for: who)
                var lines: [String] = []
                for log in DailyLogFiles.files(in: config.logDirectory) {
                    let text = (try? String(contentsOfFile: log.path, encoding: .utf8)) ?? ""
                    lines += text.split(separator: "\n").filter { $0.contains(token) }.map(String.init)
                }
                if !lines.isEmpty { try zip.add(name: "logs/lines-about-subject.log", bytes: Array((lines.joined(separator: "\n") + "\n").utf8)) }
            }
            let summary = "Export for \(who) — \(count) item(s), created \(ISO8601DateFormatter().string(from: Date()))\n"
            try zip.add(name: "README.txt", bytes: Array(summary.utf8))
            try zip.finish()
            try await storage.append(AuditRecord(action: "export", category: "subject", counts: DeletionCounts(items: count)))
            print("export: \(path) (\(count) item(s))")
            print("passphrase (shown once, not stored): \(passphrase)")
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
            let storage = try await PrivacyAssembly.sqlite(config)
            let report = try await PrivacyAssembly.engine(config, storage: storage, logger: PrivacyAssembly.cliLogger(config))
                .erase(subject: who, dryRun: dryRun)
            print(report.render().replacingOccurrences(of: "retention", with: "erase"), terminator: "")
            if report.lines.isEmpty { print("nothing stored about this subject") }
            let held = report.lines.reduce(0) { $0 + $1.held }
            if held > 0 { print("\(held) item(s) kept: legal hold") }
            // The subject's pseudonym in the logs goes too, unless the subject is under a legal hold.
            let holds = try await storage.holds() + config.privacy.legalHolds.compactMap { SubjectID($0, countryCode: config.privacyCountryCode) }
            if !dryRun, !holds.contains(who), let pseudonyms = try PrivacyAssembly.pseudonymizer(config, createKey: false) {
                let token = who.kind == .phone ? pseudonyms.phone(who.description) : pseudonyms.email(who.normalized)
                let files = try LogErasure.erase(token: token, kind: who.kind.rawValue, in: config.logDirectory)
                if files > 0 {
                    try await storage.append(AuditRecord(action: "erase", category: "logs"))
                    print("pseudonym removed from \(files) log file(s)")
                }
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
            let storage = try await PrivacyAssembly.sqlite(config)
            try await storage.addHold(who, reason: reason)
            try await storage.append(AuditRecord(action: "hold", category: "subject"))
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
            let storage = try await PrivacyAssembly.sqlite(config)
            guard try await storage.releaseHold(who) else { throw ValidationFailure("no hold for \(who) (holds in the configuration stay)") }
            try await storage.append(AuditRecord(action: "release", category: "subject"))
            print("legal hold released for \(who)")
        }
    }

    struct Holds: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List legal holds (configuration and database).")
        @OptionGroup var options: ConfigOption
        func run() async throws {
            let config = try options.loadOrExit()
            for h in config.privacy.legalHolds { print("\(h)  (configuration)") }
            let storage = try await PrivacyAssembly.sqlite(config)
            for h in try await storage.holds() { print("\(h)  (gdpr hold)") }
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
