import Crypto
import Foundation
import Yams

/// The office-level part of the configuration, which the web pages edit: extensions (with their senders and
/// voicemail), `catch_all`, `outgoing.policy`, `retention.days` and `privacy.legal_holds`. Everything else
/// (spool, storage, capi, smtp, mail, mailboxes, trusted MTA, line, web, log, snapshot …) is infrastructure and
/// stays in the file only. See README "Settings: file and web".
///
/// Its Codable shape is the file's own (the same keys at the same places), so a stored document can be put
/// into the file's YAML tree as it is and checked by `ConfigLoader.parse` like any file.
public struct OfficeSettings: Sendable, Codable, Equatable {
    public var extensions: [ExtensionConfig]
    public var catchAll: String?
    public var policy: DialPolicyConfig
    /// `retention.days` only; how often retention runs and where it exports are infrastructure.
    public var retentionDays: [String: Int]
    public var legalHolds: [String]

    public init(extensions: [ExtensionConfig], catchAll: String?, policy: DialPolicyConfig, retentionDays: [String: Int], legalHolds: [String]) {
        self.extensions = extensions; self.catchAll = catchAll; self.policy = policy
        self.retentionDays = retentionDays; self.legalHolds = legalHolds
    }

    public init(_ c: Configuration) {
        self.init(extensions: c.extensions, catchAll: c.catchAll, policy: c.outgoing.policy,
                  retentionDays: c.retention.days, legalHolds: c.privacy.legalHolds)
    }

    /// `c` with these office settings in place of its own.
    public func applied(to c: Configuration) -> Configuration {
        var out = c
        out.extensions = extensions; out.catchAll = catchAll; out.outgoing.policy = policy
        out.retention.days = retentionDays; out.privacy.legalHolds = legalHolds
        return out
    }

    enum CodingKeys: String, CodingKey { case extensions, catchAll = "catch_all", outgoing, retention, privacy }
    enum OutgoingKeys: String, CodingKey { case policy }
    enum RetentionKeys: String, CodingKey { case days }
    enum PrivacyKeys: String, CodingKey { case legalHolds = "legal_holds" }

    /// Reads the office sections of a whole configuration file (other keys are ignored here).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        extensions = try c.decode([ExtensionConfig].self, forKey: .extensions)
        catchAll = try c.decodeIfPresent(String.self, forKey: .catchAll)
        policy = DialPolicyConfig()
        if c.contains(.outgoing) {
            let o = try c.nestedContainer(keyedBy: OutgoingKeys.self, forKey: .outgoing)
            policy = try o.decodeIfPresent(DialPolicyConfig.self, forKey: .policy) ?? policy
        }
        retentionDays = [:]
        if c.contains(.retention) {
            let r = try c.nestedContainer(keyedBy: RetentionKeys.self, forKey: .retention)
            retentionDays = try r.decodeIfPresent([String: Int].self, forKey: .days) ?? [:]
        }
        legalHolds = []
        if c.contains(.privacy) {
            let p = try c.nestedContainer(keyedBy: PrivacyKeys.self, forKey: .privacy)
            legalHolds = try p.decodeIfPresent([String].self, forKey: .legalHolds) ?? []
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(extensions, forKey: .extensions)
        try c.encodeIfPresent(catchAll, forKey: .catchAll)
        var o = c.nestedContainer(keyedBy: OutgoingKeys.self, forKey: .outgoing)
        try o.encode(policy, forKey: .policy)
        var r = c.nestedContainer(keyedBy: RetentionKeys.self, forKey: .retention)
        try r.encode(retentionDays, forKey: .days)
        var p = c.nestedContainer(keyedBy: PrivacyKeys.self, forKey: .privacy)
        try p.encode(legalHolds, forKey: .legalHolds)
    }

    /// SHA-256 of a canonical encoding (sorted keys, defaults spelled out): equal settings have equal hashes
    /// however the file writes them (comments, order, left-out defaults).
    public var contentHash: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data()  // encoding plain values and arrays cannot fail
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The office sections of a configuration file's text.
    public static func fromFile(_ text: String) throws -> OfficeSettings {
        try YAMLDecoder().decode(OfficeSettings.self, from: text)
    }
}

// MARK: - The stored document

/// How the office settings sit in storage: one versioned `StoredSetting` under `key`, its value the YAML of the
/// office sections, preceded by a comment line that records the hash of the file's office sections at the
/// last import. That one hash is all the three-way rule needs.
public struct StoredOfficeDocument: Sendable, Equatable {
    public static let key = "office"
    static let hashPrefix = "# imported-file-sha256: "

    public var settings: OfficeSettings
    /// `OfficeSettings.contentHash` of the file's office sections when they were last imported.
    public var importedFileHash: String

    public init(settings: OfficeSettings, importedFileHash: String) {
        self.settings = settings; self.importedFileHash = importedFileHash
    }

    public func text() throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        let body = try encoder.encode(settings)
        return "# faxgate office settings; edited on the web pages (README \"Settings: file and web\")\n"
            + Self.hashPrefix + importedFileHash + "\n" + body
    }

    public init(text: String) throws {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(Self.hashPrefix) }) else {
            throw StorageError("stored office settings carry no imported-file hash")
        }
        importedFileHash = String(line.dropFirst(Self.hashPrefix.count)).trimmingCharacters(in: .whitespaces)
        settings = try YAMLDecoder().decode(OfficeSettings.self, from: text)
    }
}

// MARK: - The three-way rule

/// Which side wins at start, reload and `config check`: the file's office sections or the stored document.
/// Pure: it sees only hashes, so every case is a unit test.
public enum OfficeSettingsRule {
    public enum Decision: Sendable, Equatable {
        /// Take the file's office sections into storage. `initial`: nothing was stored yet (first start);
        /// otherwise the admin edited the file and nobody edited the web since the last import.
        case importFile(initial: Bool)
        /// The file did not change since the last import: the stored document (with its web edits) applies.
        case useStored
        /// The file now says exactly what is stored (e.g. the admin put `config export` into the file):
        /// nothing to take from either side; the import mark is moved to the file's hash.
        case adoptFile
        /// Both changed since the last import: refuse, and say how to resolve it.
        case conflict
    }

    public static func decide(fileHash: String, stored: (importedFileHash: String, contentHash: String)?) -> Decision {
        guard let stored else { return .importFile(initial: true) }
        if stored.importedFileHash == fileHash { return .useStored }
        if stored.contentHash == fileHash { return .adoptFile }
        if stored.contentHash == stored.importedFileHash { return .importFile(initial: false) }
        return .conflict
    }
}

/// The file and the web both changed the office settings since the last import.
public struct OfficeSettingsConflict: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var stored: StoredSetting
    public init(file: String, stored: StoredSetting) { self.file = file; self.stored = stored }

    public var description: String {
        let when = ISO8601DateFormatter().string(from: stored.updatedAt)
        return """
        \(file): office settings conflict: the file's office sections (extensions, catch_all, outgoing.policy, \
        retention.days, privacy.legal_holds) changed since they were last imported, and the stored office settings \
        were changed on the web pages too (version \(stored.version), by \(stored.updatedBy), \(when)). Nothing is \
        overwritten silently; choose one side:
          keep the web's version:  faxgate config export -c \(file) > \(file).new && mv \(file).new \(file)
          keep the file's version: faxgate config import -c \(file)   (the web edits are replaced)
        """
    }
}

// MARK: - Merging into the file

extension OfficeSettings {
    /// The file's YAML with its office sections replaced by these settings: infrastructure stays exactly as
    /// the file writes it. This text is what `config export` prints and what `ConfigLoader.parse` checks.
    public func merged(intoFile text: String) throws -> String {
        guard var root = try Yams.compose(yaml: text), root.mapping != nil else {
            throw StorageError("the configuration file is not a YAML mapping")
        }
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        guard let office = try Yams.compose(yaml: try encoder.encode(self)) else { throw StorageError("office settings do not encode") }
        let defaults = OfficeSettings(extensions: [], catchAll: nil, policy: DialPolicyConfig(), retentionDays: [:], legalHolds: [])

        root = Self.setting("extensions", in: root, to: office["extensions"])
        root = Self.setting("catch_all", in: root, to: office["catch_all"])
        // A section the file leaves out stays out while the value is its default, so the export stays short.
        if root["outgoing"] != nil || policy != defaults.policy {
            root = Self.setting("outgoing", in: root, to: Self.setting("policy", in: root["outgoing"] ?? Self.emptyMapping, to: office["outgoing"]?["policy"]))
        }
        if root["retention"] != nil || !retentionDays.isEmpty {
            root = Self.setting("retention", in: root, to: Self.setting("days", in: root["retention"] ?? Self.emptyMapping, to: office["retention"]?["days"]))
        }
        if root["privacy"] != nil || !legalHolds.isEmpty {
            root = Self.setting("privacy", in: root, to: Self.setting("legal_holds", in: root["privacy"] ?? Self.emptyMapping, to: office["privacy"]?["legal_holds"]))
        }
        return try Yams.serialize(node: root)
    }

    static var emptyMapping: Node { Node([(Node, Node)]()) }

    /// `node` (a mapping) with `key` set to `value`, or removed when `value` is nil; the key keeps its place.
    static func setting(_ key: String, in node: Node, to value: Node?) -> Node {
        let mapping = node.mapping ?? Node.Mapping([])
        var pairs: [(Node, Node)] = mapping.map { ($0.key, $0.value) }
        if let i = pairs.firstIndex(where: { $0.0.string == key }) {
            if let value { pairs[i].1 = value } else { pairs.remove(at: i) }
        } else if let value {
            pairs.append((Node(key), value))
        }
        return Node(pairs, mapping.tag, mapping.style)
    }
}

// MARK: - What changed, for the audit trail

extension OfficeSettings {
    /// A readable summary of what differs from `old`, one line per change. Sender secrets are named as
    /// changed, never shown.
    public func changes(from old: OfficeSettings) -> [String] {
        var out: [String] = []
        let oldByName = Dictionary(old.extensions.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newByName = Dictionary(extensions.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for ext in extensions where oldByName[ext.name] == nil { out.append("extension \(ext.name) added (numbers \(ext.numbers.joined(separator: ", ")))") }
        for ext in old.extensions where newByName[ext.name] == nil { out.append("extension \(ext.name) removed") }
        for ext in extensions {
            guard let before = oldByName[ext.name], before != ext else { continue }
            out += Self.extensionChanges(before, ext).map { "extension \(ext.name): \($0)" }
        }
        if catchAll != old.catchAll { out.append("catch_all: \(old.catchAll ?? "none") → \(catchAll ?? "none")") }
        if policy.denyPrefixes != old.policy.denyPrefixes {
            out.append("policy.deny_prefixes: \(old.policy.denyPrefixes.joined(separator: " ")) → \(policy.denyPrefixes.joined(separator: " "))")
        }
        if policy.allowInternational != old.policy.allowInternational {
            out.append("policy.allow_international: \(old.policy.allowInternational) → \(policy.allowInternational)")
        }
        if policy.maxJobsPerSenderPerDay != old.policy.maxJobsPerSenderPerDay {
            out.append("policy.max_jobs_per_sender_per_day: \(old.policy.maxJobsPerSenderPerDay) → \(policy.maxJobsPerSenderPerDay)")
        }
        if policy.maxPagesPerSenderPerDay != old.policy.maxPagesPerSenderPerDay {
            out.append("policy.max_pages_per_sender_per_day: \(old.policy.maxPagesPerSenderPerDay) → \(policy.maxPagesPerSenderPerDay)")
        }
        for key in Set(retentionDays.keys).union(old.retentionDays.keys).sorted() where retentionDays[key] != old.retentionDays[key] {
            out.append("retention.days.\(key): \(old.retentionDays[key].map(String.init) ?? "default") → \(retentionDays[key].map(String.init) ?? "default")")
        }
        for hold in legalHolds where !old.legalHolds.contains(hold) { out.append("legal hold added: \(hold)") }
        for hold in old.legalHolds where !legalHolds.contains(hold) { out.append("legal hold removed: \(hold)") }
        return out
    }

    static func extensionChanges(_ a: ExtensionConfig, _ b: ExtensionConfig) -> [String] {
        var out: [String] = []
        func list(_ x: [String]) -> String { x.isEmpty ? "(none)" : x.joined(separator: ", ") }
        func opt(_ x: String?) -> String { x ?? "(none)" }
        if a.numbers != b.numbers { out.append("numbers \(list(a.numbers)) → \(list(b.numbers))") }
        if a.email != b.email { out.append("email \(list(a.email)) → \(list(b.email))") }
        if a.formats != b.formats { out.append("formats \(list(a.formats)) → \(list(b.formats))") }
        if a.language != b.language { out.append("language \(a.language) → \(b.language)") }
        if a.stationID != b.stationID { out.append("station_id \(opt(a.stationID)) → \(opt(b.stationID))") }
        if a.headline != b.headline { out.append("headline \(opt(a.headline)) → \(opt(b.headline))") }
        if a.fine != b.fine { out.append("fine \(a.fine) → \(b.fine)") }
        if a.ringDelaySeconds != b.ringDelaySeconds { out.append("ring_delay_seconds \(a.ringDelaySeconds) → \(b.ringDelaySeconds)") }
        if a.pdfPageSize != b.pdfPageSize { out.append("pdf_page_size \(a.pdfPageSize) → \(b.pdfPageSize)") }
        let s = a.senders, t = b.senders
        if s.allow != t.allow { out.append("senders.allow \(list(s.allow)) → \(list(t.allow))") }
        if s.requireAuthentication != t.requireAuthentication {
            out.append("senders.require_authentication \(s.requireAuthentication) → \(t.requireAuthentication)")
        }
        if s.secret != t.secret { out.append(t.secret == nil ? "senders.secret removed" : (s.secret == nil ? "senders.secret set" : "senders.secret changed")) }
        if s.callingNumber != t.callingNumber { out.append("senders.calling_number \(opt(s.callingNumber)) → \(opt(t.callingNumber))") }
        if s.hideCallingNumber != t.hideCallingNumber { out.append("senders.hide_calling_number \(s.hideCallingNumber) → \(t.hideCallingNumber)") }
        if s.allowInternational != t.allowInternational { out.append("senders.allow_international \(opt(s.allowInternational.map { "\($0)" })) → \(opt(t.allowInternational.map { "\($0)" }))") }
        if s.coverPage != t.coverPage { out.append("senders.cover_page \(s.coverPage) → \(t.coverPage)") }
        if s.faxBody != t.faxBody { out.append("senders.fax_body \(s.faxBody.rawValue) → \(t.faxBody.rawValue)") }
        if s != t && out.allSatisfy({ !$0.hasPrefix("senders.") }) { out.append("senders changed") }
        if a.voicemail != b.voicemail {
            switch (a.voicemail, b.voicemail) {
            case (nil, _): out.append("voicemail added")
            case (_, nil): out.append("voicemail removed")
            case (let v?, let w?):
                if v.enabled != w.enabled { out.append("voicemail.enabled \(v.enabled) → \(w.enabled)") }
                if v.greeting != w.greeting { out.append("voicemail.greeting \(opt(v.greeting)) → \(opt(w.greeting))") }
                if v.ringDelaySeconds != w.ringDelaySeconds { out.append("voicemail.ring_delay_seconds \(v.ringDelaySeconds) → \(w.ringDelaySeconds)") }
                if v.maxSeconds != w.maxSeconds { out.append("voicemail.max_seconds \(v.maxSeconds) → \(w.maxSeconds)") }
                if v.attachWAV != w.attachWAV { out.append("voicemail.attach_wav \(v.attachWAV) → \(w.attachWAV)") }
                if v.privacyNoticeOnly != w.privacyNoticeOnly { out.append("voicemail.privacy_notice_only \(v.privacyNoticeOnly) → \(w.privacyNoticeOnly)") }
                if out.allSatisfy({ !$0.hasPrefix("voicemail.") }) { out.append("voicemail settings changed") }
            }
        }
        return out
    }
}
