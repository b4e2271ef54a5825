import BasicRedaction
import CAPITransport
import FaxgateCore
import Foundation
import Logging
import SQLiteStorage

/// Builds the plugins the configuration names. Adding a plugin means one line here and one target.
enum PluginRegistry {
    struct UnknownPlugin: Error, CustomStringConvertible {
        var kind: String, name: String, known: [String]
        var description: String { "unknown \(kind) plugin '\(name)' (available: \(known.joined(separator: ", ")))" }
    }

    static let storageDrivers = ["sqlite"]
    static let transports = ["capi"]

    static func storage(_ config: Configuration, readOnly: Bool = false) throws -> any Storage {
        switch config.storage.driver {
        case "sqlite":
            let path = config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite"
            if !readOnly {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            }
            return try SQLiteStorage(path: path, readOnly: readOnly)
        default:
            throw UnknownPlugin(kind: "storage", name: config.storage.driver, known: storageDrivers)
        }
    }

    static func redactor(_ config: Configuration) throws -> Redactor {
        try Redactor(config.log.redaction.map { name in
            guard let set = BasicRedaction.ruleSets[name] else {
                throw UnknownPlugin(kind: "redaction", name: name, known: BasicRedaction.ruleSets.keys.sorted())
            }
            return set
        })
    }

    static func transport(_ config: Configuration, handler: any ReceptionHandler, logger: Logger) -> any FaxTransport {
        let settings = CAPITransportSettings(
            driver: config.capi.driver, host: config.capi.host ?? "127.0.0.1", port: config.capi.port ?? 2662,
            controllers: config.capi.controllers, answerAudioAsFax: config.capi.answerAudioAsFax,
            capiHome: config.spoolDirectory + "/capi")
        return CAPIFaxTransport(settings: settings, handler: handler, logger: logger)
    }
}
