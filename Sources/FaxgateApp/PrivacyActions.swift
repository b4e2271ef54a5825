import BasicRedaction
import FaxgateCore
import Foundation
import Logging
import FaxgateWeb
import SupportSnapshot

/// The privacy operations, one function each. The CLI (`gdpr`, `snapshot`, `retention` in PrivacyCommands.swift)
/// and the web pages (WebPrivacyOperations.swift) call exactly these, so both do the same thing with the same
/// audit records. Storage comes in as the `PrivacyStorage` capability, never as a concrete plugin.
enum PrivacyActions {
    // MARK: Art. 30 record

    static func record(_ config: Configuration, storage: (any PrivacyStorage)?) async -> ProcessingRecord {
        let stored = (try? await storage?.storedDataKinds()) ?? []
        return ProcessingRecord(config: config, storedCategories: stored, categories: RetentionSettings.categories.map(\.key))
    }

    // MARK: Retention

    static func retentionRun(_ config: Configuration, storage: any PrivacyStorage, logger: Logger, dryRun: Bool) async throws -> RetentionReport {
        try await PrivacyAssembly.engine(config, storage: storage, logger: logger).run(dryRun: dryRun)
    }

    // MARK: Legal holds

    /// A hold from either source: the configuration (`privacy.legal_holds`, changed by editing it) or storage.
    struct HoldEntry: Sendable, Equatable {
        var subject: SubjectID
        var reason: String
        var since: Date?
        var fromConfiguration: Bool
    }

    static func holds(_ config: Configuration, storage: any PrivacyStorage) async throws -> [HoldEntry] {
        let configured = config.privacy.legalHolds.compactMap { SubjectID($0, countryCode: config.privacyCountryCode) }
            .map { HoldEntry(subject: $0, reason: "", since: nil, fromConfiguration: true) }
        let stored = try await storage.holdDetails().map { HoldEntry(subject: $0.subject, reason: $0.reason, since: $0.since, fromConfiguration: false) }
        return configured + stored
    }

    /// The hold that covers `subject`, if any (configuration first: it cannot be released from here).
    static func hold(on subject: SubjectID, _ config: Configuration, storage: any PrivacyStorage) async throws -> HoldEntry? {
        try await holds(config, storage: storage).first { $0.subject == subject }
    }

    static func addHold(_ subject: SubjectID, reason: String, storage: any PrivacyStorage) async throws {
        try await storage.addHold(subject, reason: reason)
        try await storage.append(AuditRecord(action: "hold", category: "subject"))
    }

    /// False when there is no stored hold (holds in the configuration stay until the file changes).
    static func releaseHold(_ subject: SubjectID, storage: any PrivacyStorage) async throws -> Bool {
        guard try await storage.releaseHold(subject) else { return false }
        try await storage.append(AuditRecord(action: "release", category: "subject"))
        return true
    }

    // MARK: Subject access (Art. 15) and erasure (Art. 17)

    struct ExportResult: Sendable {
        var path: String
        var items: Int
        /// Shown once to whoever asked; never stored, logged or audited.
        var passphrase: String
    }

    /// Writes everything stored about `subject` into an AES-256 ZIP at `path`.
    static func export(_ subject: SubjectID, to path: String, _ config: Configuration, storage: any PrivacyStorage,
                       logger: Logger) async throws -> ExportResult {
        let engine = PrivacyAssembly.engine(config, storage: storage, logger: logger)
        let passphrase = Passphrase.generate()
        let zip = try EncryptedZipWriter(path: path, passphrase: passphrase)
        var count = 0
        for (category, items) in try await engine.items(about: subject) {
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
            let token = pseudonyms.token(for: subject)
            var lines: [String] = []
            for log in DailyLogFiles.files(in: config.logDirectory) {
                // A log file that cannot be read fails the export: a subject access answer must not be silently short.
                let text = try String(contentsOfFile: log.path, encoding: .utf8)
                lines += text.split(separator: "\n").filter { $0.contains(token) }.map(String.init)
            }
            if !lines.isEmpty { try zip.add(name: "logs/lines-about-subject.log", bytes: Array((lines.joined(separator: "\n") + "\n").utf8)) }
        }
        let summary = "Export for \(subject) — \(count) item(s), created \(ISO8601DateFormatter().string(from: Date()))\n"
        try zip.add(name: "README.txt", bytes: Array(summary.utf8))
        try zip.finish()
        try await storage.append(AuditRecord(action: "export", category: "subject", counts: DeletionCounts(items: count)))
        return ExportResult(path: path, items: count, passphrase: passphrase)
    }

    enum EraseResult: Sendable {
        /// Nothing was touched: the subject is under legal hold.
        case refused(HoldEntry)
        /// `logFiles`: log files from which the subject's pseudonym was removed.
        case done(RetentionReport, logFiles: Int)
    }

    /// Erases everything about `subject`, refused as a whole while the subject is under legal hold. Items that
    /// also concern another held subject stay (the report counts them as held).
    static func erase(_ subject: SubjectID, dryRun: Bool, _ config: Configuration, storage: any PrivacyStorage,
                      logger: Logger) async throws -> EraseResult {
        if let hold = try await hold(on: subject, config, storage: storage) { return .refused(hold) }
        let report = try await PrivacyAssembly.engine(config, storage: storage, logger: logger).erase(subject: subject, dryRun: dryRun)
        var files = 0
        // The subject's pseudonym in the logs goes too.
        if !dryRun, let pseudonyms = try PrivacyAssembly.pseudonymizer(config, createKey: false) {
            let token = subject.kind == .phone ? pseudonyms.phone(subject.description) : pseudonyms.email(subject.normalized)
            files = try LogErasure.erase(token: token, kind: subject.kind.rawValue, in: config.logDirectory)
            if files > 0 { try await storage.append(AuditRecord(action: "erase", category: "logs")) }
        }
        return .done(report, logFiles: files)
    }

    // MARK: Support snapshots

    /// A `--from`/`--to` day (YYYY-MM-DD, UTC) as the snapshot's period bound; the end bound is the day's last second.
    static func snapshotDay(_ text: String?, endOfDay: Bool) throws -> Date? {
        guard let text else { return nil }
        guard let day = DailyLogFiles.day(ofFile: DailyLogFiles.prefix + text + DailyLogFiles.suffix) else { throw BadSnapshotDay(text: text) }
        return endOfDay ? day.addingTimeInterval(86_399) : day
    }

    /// Newest first.
    static func snapshots(_ config: Configuration) -> [SnapshotInfo] {
        SnapshotInfo.list(in: config.snapshotDirectory).reversed()
    }

    /// The ZIP of the snapshot named exactly like one `snapshots` lists; nil for any other name (no paths).
    static func snapshotPath(named name: String, _ config: Configuration) -> String? {
        guard SnapshotInfo.list(in: config.snapshotDirectory).contains(where: { $0.name == name }) else { return nil }
        return "\(config.snapshotDirectory)/\(name).zip"
    }

    struct NoSuchSnapshot: Error, CustomStringConvertible {
        var name: String
        var description: String { "no snapshot named \(name)" }
    }

    static func deleteSnapshot(named name: String, _ config: Configuration, storage: (any PrivacyStorage)?) async throws -> DeletionCounts {
        guard snapshotPath(named: name, config) != nil else { throw NoSuchSnapshot(name: name) }
        let category = SnapshotsCategory(directory: config.snapshotDirectory)
        let item = RetentionItem(category: category.name, id: name, createdAt: Date(),
                                 files: ["\(config.snapshotDirectory)/\(name).zip", "\(config.snapshotDirectory)/\(name).json"])
        let counts = try await category.delete([item])
        try await storage?.append(AuditRecord(action: "delete", category: category.name, counts: counts))
        return counts
    }

    /// Writes a snapshot (the same for `snapshot create` and the web page). The redaction and encryption run on a
    /// dispatch thread: seconds of work that must not hold an event loop or a cooperative thread.
    static func createSnapshot(_ config: Configuration, configPath: String, from: Date?, to: Date?, storage: (any PrivacyStorage)?,
                               progress: (@Sendable (String, Int64, Int64) -> Void)? = nil) async throws -> SnapshotResult {
        let configText = (try? String(contentsOfFile: configPath, encoding: .utf8)) ?? ""
        var statistics: [String: Int] = (try? await storage?.statistics()) ?? [:]
        let outbox = config.spoolDirectory + "/outbox"
        statistics["outbox.pending"] = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { $0.hasSuffix(".json") }.count
        statistics["outbox.failed"] = ((try? FileManager.default.contentsOfDirectory(atPath: outbox + "/failed")) ?? []).filter { $0.hasSuffix(".json") }.count
        // Several nodes share the outbox in the database: the spool directory holds none of it.
        if let shared = storage as? any SharedOutboxStorage {
            let store = shared.sharedOutboxStore(lease: .seconds(600), logger: Logger(label: "outbox"))
            statistics["outbox.pending"] = (try? await store.pending().count)
            statistics["outbox.failed"] = (try? await store.failedCount())
        }
        statistics["spool.incoming_files"] = ((try? FileManager.default.contentsOfDirectory(atPath: config.spoolDirectory + "/incoming")) ?? []).count
        let pseudonyms = try PrivacyAssembly.pseudonymizer(config, createKey: false)
            ?? Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: config.privacyCountryCode)
        let request = SnapshotRequest(
            configText: configText, logDirectory: config.logDirectory, outputDirectory: config.snapshotDirectory, from: from, to: to,
            versions: ["faxgate \(FaxgateVersion.string)"] + LibraryVersions.lines() + [ProcessInfo.processInfo.operatingSystemVersionString],
            capiInfo: capiInfo(config), statistics: statistics,
            redactor: try BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: config.privacy),
            redactionRules: BasicRedaction.names)
        let result = try await SnapshotCreation.run(request, progress: progress)
        SpoolOwnership.adopt([config.snapshotDirectory, result.path, config.snapshotDirectory + "/\(result.info.name).json"],
                             spoolDirectory: config.spoolDirectory)
        return result
    }

    /// What we can say about the CAPI side without touching the line: the configured driver and the
    /// controller/profile lines `serve` logged at registration. A live query is not made on purpose: it would
    /// register a second CAPI application next to the running daemon on the same controller.
    static func capiInfo(_ config: Configuration) -> String {
        var out = "driver: \(config.capi.driver)\n"
        if let host = config.capi.host { out += "host: \(host):\(config.capi.effectivePort)\n" }
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
}

/// One snapshot at a time per process, on a serial dispatch queue so the caller's executor (an event loop, a
/// cooperative thread) stays free. Names carry the second: two in the same second would overwrite each other, so
/// the next one waits for a new second.
enum SnapshotCreation {
    static let queue = DispatchQueue(label: "faxgate.snapshot", qos: .utility)
    nonisolated(unsafe) static var lastSecond: Int = 0  // touched only on `queue`

    static func run(_ request: SnapshotRequest, progress: (@Sendable (String, Int64, Int64) -> Void)?) async throws -> SnapshotResult {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SnapshotResult, Error>) in
            queue.async {
                var now = Date()
                while Int(now.timeIntervalSince1970) <= lastSecond {
                    Thread.sleep(forTimeInterval: 0.05)
                    now = Date()
                }
                lastSecond = Int(now.timeIntervalSince1970)
                continuation.resume(with: Result { try SnapshotBuilder.create(request, now: now, progress: progress) })
            }
        }
    }
}
