import FaxgateCore
import FaxgateWeb
import Foundation
import Logging
import VoiceAudio

/// The web's office settings, over the one stored document (`OfficeSettingsStore`): every save is checked by
/// the rules of `config check` on the effective configuration, stored with its version, applied to the running
/// gateway (`LiveConfiguration`) and audited. Nothing here touches the configuration file.
struct WebOfficeSettingsOperations: OfficeSettingsOperations {
    let store: OfficeSettingsStore
    let live: LiveConfiguration
    let spoolDirectory: String
    let maxGreetingBytes: Int
    let logger: Logger

    init(store: OfficeSettingsStore, live: LiveConfiguration, logger: Logger) {
        self.store = store; self.live = live; self.logger = logger
        spoolDirectory = live.current.spoolDirectory
        maxGreetingBytes = max(1, live.current.web.maxUploadMB) * 1_048_576
    }

    func current() async throws -> OfficeSettingsSnapshot {
        guard let setting = try await store.storage.setting(StoredOfficeDocument.key) else {
            // serve imports at start, so this is only a store that was never started; show the running settings.
            return OfficeSettingsSnapshot(settings: OfficeSettings(live.current), version: 0, updatedAt: Date(), updatedBy: "file")
        }
        let document = try StoredOfficeDocument(text: setting.value)
        return OfficeSettingsSnapshot(settings: document.settings, version: setting.version, updatedAt: setting.updatedAt, updatedBy: setting.updatedBy)
    }

    func save(_ settings: OfficeSettings, expectingVersion: Int, action: String, target: String, by actor: WebActor) async throws -> OfficeSaveResult {
        do {
            let state = try await store.save(settings, expectingVersion: expectingVersion, actor: actor.user.name, clientAddress: actor.clientAddress,
                                             action: action, target: target, live: live, logger: logger)
            return .saved(version: state.setting?.version ?? expectingVersion + 1)
        } catch let invalid as OfficeSettingsInvalid {
            return .invalid(invalid.messages)
        } catch is SettingVersionConflict {
            return .changedMeanwhile
        }
    }

    func storeGreeting(_ bytes: [UInt8], fileName: String, extensionName: String) async throws -> GreetingUploadResult {
        guard !bytes.isEmpty else { return .refused("the file is empty") }
        guard bytes.count <= maxGreetingBytes else { return .refused("the file is larger than \(maxGreetingBytes / 1_048_576) MB") }
        // The stored name is ours (extension and time), never the uploader's: only the suffix is kept, for sox.
        let suffix = fileName.split(separator: ".").last.map { String($0).lowercased() }.flatMap { s in
            s.count <= 5 && s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) ? s : nil
        } ?? "wav"
        let safeName = String(extensionName.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "_" })
        let dir = spoolDirectory + "/greetings/uploaded"
        try DurableFile.makeDirectory(spoolDirectory + "/greetings")
        try DurableFile.makeDirectory(dir)
        let path = "\(dir)/\(safeName)-\(Int(Date().timeIntervalSince1970 * 1000)).\(suffix)"
        try DurableFile.write(bytes, to: path, mode: 0o600)
        do {
            // sox runs off the event loop: it can take seconds on a long upload.
            _ = try await Task.detached { try GreetingCache.store(path, spoolDirectory: spoolDirectory) }.value
            return .stored(path: path)
        } catch {
            try? FileManager.default.removeItem(atPath: path)  // refused upload: nothing of it is kept
            return .refused("\(error)")
        }
    }

    func greetingWAV(extensionName: String) async throws -> [UInt8]? {
        guard let ext = live.current.extensions.first(where: { $0.name == extensionName }),
              let line = GreetingCache.line(ext, spoolDirectory: spoolDirectory, logger: logger) else { return nil }
        return WAV.encode(G711.pcm(fromLine: line))
    }
}
