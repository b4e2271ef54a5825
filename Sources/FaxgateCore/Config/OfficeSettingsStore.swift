import Foundation
import Logging

/// The office settings' one source of truth: the versioned document in storage, seeded from the file
/// (`OfficeSettingsRule` decides at every start whether the file or the stored document applies).
/// Every effective configuration it hands out went through `ConfigLoader.parse` — the rules of `config check`.
public struct OfficeSettingsStore: Sendable {
    public let storage: any Storage
    /// The configuration file's path, for messages.
    public let file: String
    /// The file's text as read at start: web saves are merged into this infrastructure, so the running
    /// gateway's infrastructure never changes under it (a changed file applies at the next start).
    public let fileText: String

    public init(storage: any Storage, file: String, fileText: String) {
        self.storage = storage; self.file = file; self.fileText = fileText
    }

    public init(storage: any Storage, file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw StorageError("cannot read \(file)") }
        self.init(storage: storage, file: file, fileText: String(decoding: data, as: UTF8.self))
    }

    /// The effective configuration and where its office part came from.
    public struct State: Sendable {
        public var configuration: Configuration
        public var office: OfficeSettings
        /// The stored document (nil only before the first import in a read-only look).
        public var setting: StoredSetting?
        public var decision: OfficeSettingsRule.Decision
    }

    public enum ConflictHandling: Sendable { case refuse, preferStored }

    /// Decides with the three-way rule and checks the result. `write` (serve): imports and adoptions are
    /// stored and audited as actor "file"; without it (`config check`, `config export`) nothing is written.
    /// A conflict throws `OfficeSettingsConflict` unless `conflicts` is `.preferStored` (export prints the
    /// web's version so the admin can put it into the file).
    public func load(write: Bool, conflicts: ConflictHandling = .refuse, logger: Logger? = nil) async throws -> State {
        let fileOffice = try OfficeSettings.fromFile(fileText)
        let fileHash = fileOffice.contentHash
        let stored = try await storage.setting(StoredOfficeDocument.key)
        let document = try stored.map { try StoredOfficeDocument(text: $0.value) }
        let decision = OfficeSettingsRule.decide(
            fileHash: fileHash, stored: document.map { ($0.importedFileHash, $0.settings.contentHash) })

        switch decision {
        case .importFile(let initial):
            guard write else {
                return State(configuration: try check(fileOffice), office: fileOffice, setting: stored, decision: decision)
            }
            let setting = try await importFile(actor: "file", clientAddress: "-", reason: initial
                ? "first start: office settings taken from the file" : "the file's office sections changed and the web did not: taken from the file")
            logger?.notice("office settings imported from the file", metadata: ["file": "\(file)", "version": "\(setting.version)"])
            return State(configuration: try check(fileOffice), office: fileOffice, setting: setting, decision: decision)
        case .useStored, .adoptFile:
            guard let stored, let document else { preconditionFailure("the rule uses a stored document only when there is one") }
            let configuration = try check(document.settings)
            var setting = stored
            if decision == .adoptFile && write {
                // The file caught up with the web (config export put into it): mark the file's state as imported,
                // so a later file edit is recognised as one.
                let marked = StoredOfficeDocument(settings: document.settings, importedFileHash: fileHash)
                setting = try await storage.putSetting(StoredOfficeDocument.key, value: try marked.text(), expectingVersion: stored.version, by: "file")
                await audit(actor: "file", clientAddress: "-", action: "settings.adopt", target: "office settings",
                            detail: "the file now holds the stored office settings (version \(setting.version))", logger: logger)
            }
            return State(configuration: configuration, office: document.settings, setting: setting, decision: decision)
        case .conflict:
            guard let stored, let document, conflicts == .preferStored else {
                throw OfficeSettingsConflict(file: file, stored: stored!)
            }
            return State(configuration: try check(document.settings), office: document.settings, setting: stored, decision: decision)
        }
    }

    /// `faxgate config import` (and the first start): the file's office sections become the stored document.
    @discardableResult
    public func importFile(actor: String, clientAddress: String, reason: String = "taken from the file") async throws -> StoredSetting {
        let fileOffice = try OfficeSettings.fromFile(fileText)
        _ = try check(fileOffice)
        let stored = try await storage.setting(StoredOfficeDocument.key)
        let old = try stored.map { try StoredOfficeDocument(text: $0.value).settings }
        let document = StoredOfficeDocument(settings: fileOffice, importedFileHash: fileOffice.contentHash)
        let setting = try await storage.putSetting(StoredOfficeDocument.key, value: try document.text(), expectingVersion: stored?.version, by: actor)
        let changes = old.map { fileOffice.changes(from: $0) } ?? []
        await audit(actor: actor, clientAddress: clientAddress, action: "settings.import", target: "office settings",
                    detail: ([reason + " (version \(setting.version))"] + changes).joined(separator: "; "), logger: nil)
        return setting
    }

    /// A web edit: `office` replaces the stored document if it was still at `expectingVersion` and the merged
    /// configuration passes `ConfigLoader.parse` and `extraChecks` (the rest of `config check`). Throws
    /// `OfficeSettingsInvalid` (nothing stored) or `SettingVersionConflict` (changed meanwhile).
    public func save(_ office: OfficeSettings, expectingVersion: Int, actor: String, clientAddress: String,
                     action: String, target: String, extraChecks: @Sendable (Configuration) -> [String] = { _ in [] },
                     live: LiveConfiguration? = nil, logger: Logger? = nil) async throws -> State {
        let configuration = try check(office)
        let extra = extraChecks(configuration)
        if !extra.isEmpty { throw OfficeSettingsInvalid(messages: extra) }
        guard let stored = try await storage.setting(StoredOfficeDocument.key) else {
            throw SettingVersionConflict(key: StoredOfficeDocument.key, actual: nil)
        }
        let before = try StoredOfficeDocument(text: stored.value)
        let document = StoredOfficeDocument(settings: office, importedFileHash: before.importedFileHash)
        let setting = try await storage.putSetting(StoredOfficeDocument.key, value: try document.text(), expectingVersion: expectingVersion, by: actor)
        live?.update(configuration)
        let changes = office.changes(from: before.settings)
        await audit(actor: actor, clientAddress: clientAddress, action: action, target: target,
                    detail: (changes.isEmpty ? ["no change"] : changes).joined(separator: "; ") + " (version \(setting.version))", logger: logger)
        logger?.notice("office settings changed on the web", metadata: ["by": "\(actor)", "version": "\(setting.version)", "what": "\(target)"])
        return State(configuration: configuration, office: office, setting: setting, decision: .useStored)
    }

    /// The file's infrastructure with `office` in it, checked by exactly what `config check` runs on a file.
    public func check(_ office: OfficeSettings) throws -> Configuration {
        let merged = try office.merged(intoFile: fileText)
        do {
            return try ConfigLoader.parse(merged, file: "\(file) with the stored office settings")
        } catch {
            throw OfficeSettingsInvalid(messages: error.issues.map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" })
        }
    }

    /// The effective YAML: the file with the office sections in force (what `config export` prints).
    public func effectiveYAML(_ office: OfficeSettings) throws -> String {
        try office.merged(intoFile: fileText)
    }

    func audit(actor: String, clientAddress: String, action: String, target: String, detail: String, logger: Logger?) async {
        do {
            try await storage.appendAudit(AuditEntry(actor: actor, clientAddress: clientAddress, action: action, target: target, detail: detail))
        } catch {
            // The change itself is stored; a lost audit line is reported, not hidden.
            (logger ?? Logger(label: "faxgate.settings")).error("cannot write the audit entry for \(action): \(error)")
        }
    }
}

/// A change the rules of `config check` refuse; `messages` are the check's own texts (key path: problem).
public struct OfficeSettingsInvalid: Error, Sendable, CustomStringConvertible {
    public var messages: [String]
    public init(messages: [String]) { self.messages = messages }
    public var description: String { messages.joined(separator: "\n") }
}
