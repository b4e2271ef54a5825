import FaxgateCore
import Foundation

/// Office-level settings the admin edits on the web (extensions, senders, dial policy, retention, holds):
/// validated with the rules of `config check`, stored, applied without a restart, audited.
/// Implemented in FaxgateApp (WebOfficeSettingsOperations) over `OfficeSettingsStore` and the gateway's
/// `LiveConfiguration`. The pages check the admin (`requireAdmin`) before they call.
public protocol OfficeSettingsOperations: Sendable {
    /// The office settings in force and the version a form must name when it saves.
    func current() async throws -> OfficeSettingsSnapshot
    /// Replaces the office settings if they are still at `expectingVersion` and the effective configuration
    /// passes `config check`'s rules; applies them to the running gateway and writes the audit entry
    /// (`action`, `target`; the detail is the change summary, never a secret).
    func save(_ settings: OfficeSettings, expectingVersion: Int, action: String, target: String,
              by actor: WebActor) async throws -> OfficeSaveResult
    /// Stores an uploaded greeting for `extensionName` (converted once now, so a file sox cannot read is refused
    /// here) and returns the absolute path to put into `voicemail.greeting`. Saving that is a separate `save`.
    func storeGreeting(_ bytes: [UInt8], fileName: String, extensionName: String) async throws -> GreetingUploadResult
    /// The extension's greeting as callers hear it (line format decoded to WAV), for `<audio>`; nil = none set.
    func greetingWAV(extensionName: String) async throws -> [UInt8]?
}

/// What the forms show: the settings, their version, who changed them last.
public struct OfficeSettingsSnapshot: Sendable {
    public var settings: OfficeSettings
    public var version: Int
    public var updatedAt: Date
    public var updatedBy: String
    public init(settings: OfficeSettings, version: Int, updatedAt: Date, updatedBy: String) {
        self.settings = settings; self.version = version; self.updatedAt = updatedAt; self.updatedBy = updatedBy
    }
}

public enum OfficeSaveResult: Sendable, Equatable {
    case saved(version: Int)
    /// The texts of `config check` (key path: problem); nothing was stored.
    case invalid([String])
    /// Someone saved in between; nothing was stored.
    case changedMeanwhile
}

public enum GreetingUploadResult: Sendable, Equatable {
    case stored(path: String)
    /// The converter's reason (unreadable audio, too large).
    case refused(String)
}
