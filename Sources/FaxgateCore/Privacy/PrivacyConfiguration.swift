import Foundation

/// `retention:` — how long each category of data is kept, in days counted from creation (0 = keep).
///
/// Category keys are the `configKey`s of the `RetentionCategory` implementations; every key a future
/// category needs is listed in `RetentionSettings.categories` so the config schema knows it today.
public struct RetentionSettings: Sendable, Codable, Equatable {
    /// Every retention category this product knows, with its default in days. Adding a category:
    /// one line here (the config key becomes valid) and a `RetentionCategory` implementation.
    public static let categories: [(key: String, defaultDays: Int, what: String)] = [
        ("received_faxes", 90, "received faxes: journal row, history, stored PDF/TIFF, spool SFF, outbox copies"),
        ("sent_faxes", 90, "sent faxes: job row, history, documents, send reports"),
        ("voicemails", 90, "voicemails: call row, audio files, mails"),
        ("rejected_mails", 30, "mails refused by mail → fax, raw message files"),
        ("journal", 365, "journal rows of calls without content (rejected, failed before any page)"),
        ("logs", 30, "daily log files"),
        ("snapshots", 14, "support snapshots"),
    ]

    /// Days per category key; keys left out take their default.
    public var days: [String: Int] = [:]
    /// How often `serve` runs retention (the first run is at start).
    public var runEveryHours: Int = 24
    /// Hand items to the archive-export plugin before deleting them (legal retention duties).
    public var exportBeforeDelete: Bool = false
    /// Export target: "directory" (ArchiveExport plugin).
    public var exportDriver: String = "directory"
    /// Where exported items go. Default: <spool_directory>/archive
    public var archiveDirectory: String?

    enum CodingKeys: String, CodingKey {
        case days, runEveryHours = "run_every_hours", exportBeforeDelete = "export_before_delete"
        case exportDriver = "export_driver", archiveDirectory = "archive_directory"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        days = try c.decodeIfPresent([String: Int].self, forKey: .days) ?? [:]
        runEveryHours = try c.decodeIfPresent(Int.self, forKey: .runEveryHours) ?? runEveryHours
        exportBeforeDelete = try c.decodeIfPresent(Bool.self, forKey: .exportBeforeDelete) ?? false
        exportDriver = try c.decodeIfPresent(String.self, forKey: .exportDriver) ?? exportDriver
        archiveDirectory = try c.decodeIfPresent(String.self, forKey: .archiveDirectory)
    }

    /// Days for a category key: configured, else the default, else 0 (keep).
    public func days(for key: String) -> Int {
        days[key] ?? Self.categories.first { $0.key == key }?.defaultDays ?? 0
    }
}

/// `privacy:` — redaction and data-subject settings.
public struct PrivacySettings: Sendable, Codable, Equatable {
    /// Replace personal data in logs with keyed pseudonyms ([phone:kqzmtrwe]) instead of plain [phone].
    public var pseudonyms: Bool = true
    /// Country calling code used to equate national and international notations ("49"). Unset: the line's
    /// (`outgoing.line.country_code`, default 49) — use `Configuration.privacyCountryCode`, never this directly.
    public var countryCode: String?
    /// Names from the address book and of recipients: redacted wherever they appear.
    /// (Extension names are not personal and stay readable.)
    public var names: [String] = []
    /// Admin-defined regular expressions (ICU syntax); every match is replaced by [redacted].
    public var redactPatterns: [String] = []
    /// Subjects (numbers or addresses) under legal hold: retention and erasure skip their data.
    public var legalHolds: [String] = []

    enum CodingKeys: String, CodingKey {
        case pseudonyms, countryCode = "country_code", names, redactPatterns = "redact_patterns", legalHolds = "legal_holds"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pseudonyms = try c.decodeIfPresent(Bool.self, forKey: .pseudonyms) ?? true
        countryCode = try c.decodeIfPresent(String.self, forKey: .countryCode)
        names = try c.decodeIfPresent([String].self, forKey: .names) ?? []
        redactPatterns = try c.decodeIfPresent([String].self, forKey: .redactPatterns) ?? []
        legalHolds = try c.decodeIfPresent([String].self, forKey: .legalHolds) ?? []
    }
}

/// `snapshot:` — support snapshots.
public struct SnapshotSettings: Sendable, Codable, Equatable {
    /// Default: <spool_directory>/snapshots
    public var directory: String?
    /// Support address; `snapshot create --mail` sends the (encrypted) archive there.
    public var supportAddress: String?
    /// Where `snapshot create --mail` sends the passphrase — never the archive's address, so one misdirected
    /// or intercepted mailbox is not enough. Unset: the passphrase is only printed, to be passed on by phone.
    public var passphraseAddress: String?

    enum CodingKeys: String, CodingKey { case directory, supportAddress = "support_address", passphraseAddress = "passphrase_address" }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        supportAddress = try c.decodeIfPresent(String.self, forKey: .supportAddress)
        passphraseAddress = try c.decodeIfPresent(String.self, forKey: .passphraseAddress)
    }

    /// Archive and passphrase would reach the same mailbox (addresses compared without case and display name).
    public var passphraseGoesWithArchive: Bool {
        guard let a = supportAddress, let b = passphraseAddress else { return false }
        let norm = { (s: String) in (MailboxSyntax.address(in: s)?.address ?? s).trimmingCharacters(in: .whitespaces).lowercased() }
        return norm(a) == norm(b)
    }
}

extension Configuration {
    /// Where daily log files go: `log.directory`, default <spool_directory>/log.
    public var logDirectory: String { log.directory ?? spoolDirectory + "/log" }
    public var snapshotDirectory: String { snapshot.directory ?? spoolDirectory + "/snapshots" }
    public var archiveDirectory: String { retention.archiveDirectory ?? spoolDirectory + "/archive" }
    /// The country code pseudonyms, subjects and holds use: `privacy.country_code`, else the line's. Never empty,
    /// so "030 1234567" in a queue line and "+49 30 1234567" in a transport line get one pseudonym.
    public var privacyCountryCode: String {
        if let cc = privacy.countryCode, !cc.isEmpty { return cc }
        return outgoing.line.countryCode
    }
}

/// Schema and checks of the privacy sections, kept here so ConfigLoader/ConfigValidator only call in.
enum PrivacyConfigSchema {
    static let retention: ConfigLoader.Schema = .mapping([
        "days": .mapping(Dictionary(uniqueKeysWithValues: RetentionSettings.categories.map { ($0.key, ConfigLoader.Schema.leaf) })),
        "run_every_hours": .leaf, "export_before_delete": .leaf, "export_driver": .leaf, "archive_directory": .leaf,
    ])
    static let privacy: ConfigLoader.Schema = .mapping([
        "pseudonyms": .leaf, "country_code": .leaf, "names": .leaf, "redact_patterns": .leaf, "legal_holds": .leaf,
    ])
    static let snapshot: ConfigLoader.Schema = .mapping(["directory": .leaf, "support_address": .leaf, "passphrase_address": .leaf])

    static func validate(_ c: Configuration) -> [ConfigValidator.Problem] {
        var problems: [ConfigValidator.Problem] = []
        func problem(_ path: [ConfigLoader.PathElement], _ message: String) { problems.append(.init(path: path, message: message)) }
        for (key, days) in c.retention.days.sorted(by: { $0.key < $1.key }) where days < 0 {
            problem([.key("retention"), .key("days"), .key(key)], "days must be 0 (keep) or more")
        }
        if c.retention.runEveryHours < 1 { problem([.key("retention"), .key("run_every_hours")], "at least 1") }
        if c.retention.exportDriver != "directory" { problem([.key("retention"), .key("export_driver")], "must be directory") }
        if let dir = c.retention.archiveDirectory, !dir.hasPrefix("/") { problem([.key("retention"), .key("archive_directory")], "must be an absolute path") }
        if let dir = c.log.directory, !dir.hasPrefix("/") { problem([.key("log"), .key("directory")], "must be an absolute path") }
        if let dir = c.snapshot.directory, !dir.hasPrefix("/") { problem([.key("snapshot"), .key("directory")], "must be an absolute path") }
        if let cc = c.privacy.countryCode, cc.isEmpty || cc.count > 3 || !cc.allSatisfy(\.isASCIIDigit) {
            problem([.key("privacy"), .key("country_code")], "a country calling code: 1 to 3 digits, e.g. 49")
        }
        for (i, pattern) in c.privacy.redactPatterns.enumerated() {
            do { _ = try NSRegularExpression(pattern: pattern) } catch {
                problem([.key("privacy"), .key("redact_patterns"), .index(i)], "not a valid regular expression")
            }
        }
        if let cc = c.privacy.countryCode, cc != c.outgoing.line.countryCode, c.outgoing.line != LineConfig() || !c.outgoing.mailboxes.isEmpty {
            problem([.key("privacy"), .key("country_code")],
                    "differs from outgoing.line.country_code (\(c.outgoing.line.countryCode)): one number would get two pseudonyms; leave it out to use the line's")
        }
        for (i, subject) in c.privacy.legalHolds.enumerated() where SubjectID(subject, countryCode: c.privacyCountryCode) == nil {
            problem([.key("privacy"), .key("legal_holds"), .index(i)], "not a telephone number or e-mail address")
        }
        if let support = c.snapshot.supportAddress, !MailboxSyntax.isAddress(support) {
            problem([.key("snapshot"), .key("support_address")], "not an e-mail address: \(support)")
        }
        if let address = c.snapshot.passphraseAddress, !MailboxSyntax.isAddress(address) {
            problem([.key("snapshot"), .key("passphrase_address")], "not an e-mail address: \(address)")
        }
        if c.snapshot.passphraseGoesWithArchive {
            problem([.key("snapshot"), .key("passphrase_address")], "must differ from support_address: archive and passphrase never go to the same mailbox")
        }
        return problems
    }
}
