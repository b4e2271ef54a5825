// Office settings between the file and storage, as the CLI sees them: `config check` applies the three-way
// rule read-only, `config export` prints the effective YAML, `config import` takes the file's office sections,
// and `serve` decides (and imports) at start. README "Settings: file and web" explains the rule.
import ArgumentParser
import FaxgateCore
import Foundation
import Logging

enum OfficeSettingsCLI {
    /// The store over `config`'s storage, or nil when the database does not exist yet (nothing is stored
    /// before the first start; the file applies as it is).
    static func readOnlyStore(_ config: Configuration, path: String) throws -> OfficeSettingsStore? {
        if config.storage.driver == "sqlite" {
            let db = config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite"
            if !FileManager.default.fileExists(atPath: db) { return nil }
        }
        return try OfficeSettingsStore(storage: PluginRegistry.storage(config, readOnly: true), file: path)
    }

    /// At `serve` start: the three-way rule, writing an import or adoption; a conflict or an invalid effective
    /// configuration stops the start with the message (exit 78, like a configuration error).
    static func effectiveForServe(_ config: Configuration, path: String, logger: Logger) async throws -> Configuration {
        do {
            try FileManager.default.createDirectory(atPath: config.spoolDirectory, withIntermediateDirectories: true)
            let storage = try PluginRegistry.storage(config)
            try await storage.migrate()
            let state = try await OfficeSettingsStore(storage: storage, file: path).load(write: true, logger: logger)
            switch state.decision {
            case .useStored where state.office != OfficeSettings(config):
                logger.notice("office settings: the stored version \(state.setting?.version ?? 0) applies (edited on the web since the file was imported)")
            case .importFile(initial: false):
                logger.notice("office settings: the file's office sections changed; imported them")
            default: break
            }
            return state.configuration
        } catch let conflict as OfficeSettingsConflict {
            logger.critical("\(conflict.description)")
            FileHandle.standardError.write(Data((conflict.description + "\n").utf8))
            throw ExitCode(78)
        } catch let invalid as OfficeSettingsInvalid {
            let text = invalid.messages.map { "\(path) with the stored office settings: \($0)" }.joined(separator: "\n")
            logger.critical("the effective configuration is invalid:\n\(text)")
            FileHandle.standardError.write(Data((text + "\n").utf8))
            throw ExitCode(78)
        }
    }

    /// The office part of `config check`: conflict and the effective configuration's own check.
    /// Returns the effective configuration and a line saying where the office settings come from.
    static func check(_ fileConfig: Configuration, path: String) async -> (config: Configuration, problems: [String], note: String) {
        let opened: OfficeSettingsStore?
        do {
            opened = try readOnlyStore(fileConfig, path: path)
        } catch {
            // E.g. a user who may read the file but not the service's database: the file is checked, the stored
            // office settings cannot be; said plainly, not an error of the configuration.
            return (fileConfig, [], "warning: the office settings in the database were not checked (cannot open it: \(error))")
        }
        do {
            guard let store = opened else {
                return (fileConfig, [], "office settings: from the file (no database yet; imported at the first start)")
            }
            let state = try await store.load(write: false)
            let note: String = switch state.decision {
            case .importFile(initial: true): "office settings: from the file (imported at the next start)"
            case .importFile(initial: false): "office settings: the file changed them; imported at the next start"
            case .useStored, .adoptFile:
                "office settings: stored version \(state.setting?.version ?? 0) (last change by \(state.setting?.updatedBy ?? "?")); `faxgate config export` prints them"
            case .conflict: ""
            }
            return (state.configuration, [], note)
        } catch let conflict as OfficeSettingsConflict {
            return (fileConfig, [conflict.description], "")
        } catch let invalid as OfficeSettingsInvalid {
            return (fileConfig, invalid.messages.map { "with the stored office settings: \($0)" }, "")
        } catch {
            return (fileConfig, ["office settings: cannot read them from storage: \(error)"], "")
        }
    }
}

extension ConfigCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration: the file with the office settings in force (from the web pages).",
            discussion: """
            Office settings (extensions, catch_all, outgoing.policy, retention.days, privacy.legal_holds) live in \
            storage once imported; the rest comes from the file. The output includes sender secrets: write it only \
            to a file as protected as the configuration (e.g. faxgate config export > new.yaml && mv new.yaml faxgate.yaml).
            """)
        @OptionGroup var options: ConfigOption
        func run() async throws {
            let fileConfig = try options.loadOrExit()
            do {
                guard let store = try OfficeSettingsCLI.readOnlyStore(fileConfig, path: options.path) else {
                    let text = String(decoding: FileManager.default.contents(atPath: options.path) ?? Data(), as: UTF8.self)
                    print(try OfficeSettings(fileConfig).merged(intoFile: text), terminator: "")
                    return
                }
                // In a conflict the stored (web) version is printed: putting it into the file is one way out.
                let state = try await store.load(write: false, conflicts: .preferStored)
                print(try store.effectiveYAML(state.office), terminator: "")
            } catch let invalid as OfficeSettingsInvalid {
                FileHandle.standardError.write(Data(invalid.messages.map { "\(options.path) with the stored office settings: \($0)\n" }.joined().utf8))
                throw ExitCode(78)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take the file's office settings into storage, replacing what was edited on the web (audited).")
        @OptionGroup var options: ConfigOption
        func run() async throws {
            let config = try options.loadOrExit()
            try FileManager.default.createDirectory(atPath: config.spoolDirectory, withIntermediateDirectories: true)
            let storage = try PluginRegistry.storage(config)
            try await storage.migrate()
            let store = try OfficeSettingsStore(storage: storage, file: options.path)
            let user = ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? "\(getuid())"
            let setting = try await store.importFile(actor: "cli:\(user)", clientAddress: "-", reason: "faxgate config import")
            print("\(options.path): office settings imported (version \(setting.version)); a running serve applies them at its next start or the next save on the web pages")
        }
    }
}

