import BasicRedaction
import CAPITransport
import FaxgateCore
import Foundation
import IMAPIntake
import MailIn
import Logging
import PostgresStorage
import SQLiteStorage

/// Builds the plugins the configuration names. Adding a plugin means one line here and one target.
enum PluginRegistry {
    struct UnknownPlugin: Error, CustomStringConvertible {
        var kind: String, name: String, known: [String]
        var description: String { "unknown \(kind) plugin '\(name)' (available: \(known.joined(separator: ", ")))" }
    }

    static let storageDrivers = ["sqlite", "postgres"]
    static let transports = ["capi"]

    /// `readOnly` is SQLite's (the CLI opens the file without write access); a PostgreSQL handle is the same for
    /// both, the commands that pass it only read.
    static func storage(_ config: Configuration, readOnly: Bool = false, logger: Logger = Logger(label: "faxgate.storage")) throws -> any Storage {
        switch config.storage.driver {
        case "sqlite":
            let path = config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite"
            if !readOnly {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            }
            return try SQLiteStorage(path: path, readOnly: readOnly)
        case "postgres":
            guard let settings = config.storage.postgres else {
                throw ValidationFailure("storage.driver is postgres but there is no storage.postgres section")
            }
            return PostgresStorage(connection: try PostgresConnectionSettings(settings), node: config.node.effectiveID,
                                   spoolDirectory: config.spoolDirectory, logger: logger)
        default:
            throw UnknownPlugin(kind: "storage", name: config.storage.driver, known: storageDrivers)
        }
    }

    /// Log redaction with pseudonyms; `createKey` (serve) creates the installation's pseudonym key.
    static func redactor(_ config: Configuration, createKey: Bool = false) throws -> Redactor {
        try PrivacyAssembly.logRedactor(config, createKey: createKey)
    }

    static func transport(_ config: Configuration, handler: any ReceptionHandler, logger: Logger) -> any FaxSendingTransport {
        var settings = CAPITransportSettings(
            driver: config.capi.driver, host: config.capi.host ?? "127.0.0.1", port: config.capi.effectivePort,
            controllers: config.capi.controllers, answerAudioAsFax: config.capi.answerAudioAsFax,
            capiHome: config.spoolDirectory + "/capi")
        settings.answerVoice = config.extensions.contains { $0.voicemail?.enabled == true }
        // Unknown words are reported by config validation; here they fall back to auto.
        settings.faxEngine = CAPIFaxEngineSetting(configValue: config.capi.faxEngine) ?? .auto
        settings.faxEngines = config.capi.faxEngines.compactMapValues { CAPIFaxEngineSetting(configValue: $0) }
        settings.softFaxDirectory = config.spoolDirectory + "/softfax"
        return CAPIFaxTransport(settings: settings, handler: handler, logger: logger)
    }
}

extension PluginRegistry {
    /// One intake service per configured mailbox.
    static func mailIntakes(_ config: Configuration, storage: any Storage, processor: SubmissionProcessor, logger: Logger) throws -> [IMAPIntake] {
        try config.outgoing.mailboxes.map { m in
            var password = m.password ?? ""
            if let file = m.passwordFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ValidationFailure("cannot read outgoing.mailboxes \(m.name) password_file \(file)")
                }
                password = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            }
            let imap = IMAPSettings(host: m.host, port: UInt16(m.port), security: m.security == "starttls" ? .starttls : .implicitTLS,
                                    username: m.username, password: password, caFile: m.caFile)
            return try IMAPIntake(
                settings: .init(name: m.name, imap: imap, folder: m.folder, processedFolder: m.processedFolder,
                                rejectedFolder: m.rejectedFolder, poll: .seconds(m.pollSeconds),
                                maxMessageBytes: config.outgoing.maxMessageBytes, spoolDirectory: config.spoolDirectory),
                storage: storage, processor: processor, logger: logger)
        }
    }
}
