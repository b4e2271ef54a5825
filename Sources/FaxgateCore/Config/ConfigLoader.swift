import Foundation
import Yams

/// One problem in a configuration file, with the line it is on when we know it.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var line: Int?
    public var column: Int?
    /// Dotted key path, e.g. `extensions[1].numbers[0]`.
    public var path: String
    public var message: String
    public var description: String {
        let at = line.map { "line \($0)" + (column.map { ", column \($0)" } ?? "") } ?? "?"
        return path.isEmpty ? "\(at): \(message)" : "\(at): \(path): \(message)"
    }
}

public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var issues: [ConfigIssue]
    public var description: String { issues.map { "\(file): \($0)" }.joined(separator: "\n") }
}

/// Reads the YAML configuration and reports *every* problem with its line, like `postfix check`:
/// syntax errors, wrong types, unknown keys (typos silently ignored are an admin's nightmare) and
/// semantic errors (bad number ranges, overlapping extensions, unknown catch-all).
public enum ConfigLoader {
    public static func load(path: String) throws(ConfigError) -> Configuration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: "cannot read the file")])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String = "<config>") throws(ConfigError) -> Configuration {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, issues: [ConfigIssue(line: 1, path: "", message: "the file is empty")])
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, issues: [issue(from: error)])
        } catch {
            throw ConfigError(file: file, issues: [ConfigIssue(path: "", message: "\(error)")])
        }

        var issues = unknownKeys(in: root, schema: schema, path: [])
        let config: Configuration
        do {
            config = try YAMLDecoder().decode(Configuration.self, from: text)
        } catch let error as DecodingError {
            issues.append(issue(from: error, root: root))
            throw ConfigError(file: file, issues: issues)
        } catch {
            issues.append(ConfigIssue(path: "", message: "\(error)"))
            throw ConfigError(file: file, issues: issues)
        }
        issues += ConfigValidator.validate(config).map { problem in
            let mark = node(at: problem.path, in: root)?.mark
            return ConfigIssue(line: mark?.line, column: mark?.column, path: render(problem.path), message: problem.message)
        }
        if !issues.isEmpty { throw ConfigError(file: file, issues: issues) }
        return config
    }

    // MARK: - Locating problems

    /// A path element: a mapping key or a sequence index.
    public enum PathElement: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    static func node(at path: [PathElement], in root: Node) -> Node? {
        var current: Node? = root
        for element in path {
            switch element {
            case .key(let key): current = current?.mapping?[key]
            case .index(let i):
                guard let seq = current?.sequence, i < seq.count else { return current }
                current = seq[i]
            }
            if current == nil { return nil }
        }
        return current
    }

    static func render(_ path: [PathElement]) -> String {
        var out = ""
        for element in path {
            switch element {
            case .key(let k): out += out.isEmpty ? k : ".\(k)"
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    static func issue(from error: YamlError) -> ConfigIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return ConfigIssue(line: mark.line, column: mark.column, path: "", message: "YAML syntax: \(problem)")
        default:
            return ConfigIssue(path: "", message: "YAML: \(error)")
        }
    }

    static func issue(from error: DecodingError, root: Node) -> ConfigIssue {
        func elements(_ codingPath: [CodingKey]) -> [PathElement] {
            codingPath.map { key in key.intValue.map { .index($0) } ?? .key(key.stringValue) }
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = elements(context.codingPath)
            let mark = node(at: parent, in: root)?.mark
            return ConfigIssue(line: mark?.line, column: mark?.column, path: render(parent),
                               message: "required key '\(key.stringValue)' is missing")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let path = elements(context.codingPath)
            let mark = node(at: path, in: root)?.mark
            return ConfigIssue(line: mark?.line, column: mark?.column, path: render(path),
                               message: "expected \(describe(type))")
        case .dataCorrupted(let context):
            let path = elements(context.codingPath)
            let mark = node(at: path, in: root)?.mark
            return ConfigIssue(line: mark?.line, column: mark?.column, path: render(path), message: context.debugDescription)
        @unknown default:
            return ConfigIssue(path: "", message: "\(error)")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "a whole number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a text value"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "a list" : (name.hasPrefix("Dictionary") ? "a mapping" : "a \(name) section")
        }
    }

    // MARK: - Unknown keys

    /// Allowed keys per section; "*" marks a list of mappings whose items use the nested schema.
    indirect enum Schema: Sendable {
        case mapping([String: Schema])
        case list(Schema)
        case leaf
    }

    static let schema: Schema = .mapping([
        "spool_directory": .leaf, "hostname": .leaf, "catch_all": .leaf,
        "log": .mapping(["level": .leaf, "redaction": .leaf, "redact_from": .leaf, "directory": .leaf, "files": .leaf]),
        "retention": PrivacyConfigSchema.retention, "privacy": PrivacyConfigSchema.privacy, "snapshot": PrivacyConfigSchema.snapshot,
        "storage": .mapping(["driver": .leaf, "path": .leaf, "postgres": .mapping([
            "host": .leaf, "port": .leaf, "database": .leaf, "user": .leaf, "password_file": .leaf, "tls": .leaf, "ca_file": .leaf,
            "max_connections": .leaf,
        ])]),
        "node": .mapping(["id": .leaf, "lease_seconds": .leaf, "heartbeat_seconds": .leaf]),
        "reception": .mapping(["max_mb": .leaf, "max_pages": .leaf, "max_call_minutes": .leaf, "unknown_numbers": .leaf]),
        "web": .mapping([
            "enabled": .leaf, "listen": .leaf, "tls_certificate": .leaf, "tls_key": .leaf, "trusted_proxies": .leaf,
            "public_url": .leaf, "session_idle_minutes": .leaf, "session_absolute_hours": .leaf, "lockout_threshold": .leaf,
            "lockout_minutes": .leaf, "lockout_max_minutes": .leaf, "max_upload_mb": .leaf, "min_free_disk_mb": .leaf,
            "metrics_allow": .leaf,
        ]),
        "capi": .mapping([
            "driver": .leaf, "host": .leaf, "port": .leaf, "controllers": .leaf, "answer_audio_as_fax": .leaf,
            "fax_engine": .leaf, "fax_engines": .leaf,
        ]),
        "smtp": .mapping([
            "host": .leaf, "port": .leaf, "security": .leaf, "username": .leaf, "password": .leaf,
            "password_file": .leaf, "ca_file": .leaf, "timeout_seconds": .leaf, "retry_initial_seconds": .leaf,
            "retry_max_seconds": .leaf, "give_up_after_hours": .leaf,
        ]),
        "mail": .mapping(["from": .leaf, "envelope_from": .leaf, "admin_address": .leaf]),
        "extensions": .list(.mapping([
            "name": .leaf, "numbers": .leaf, "email": .leaf, "formats": .leaf, "language": .leaf,
            "station_id": .leaf, "headline": .leaf, "fine": .leaf, "ring_delay_seconds": .leaf, "pdf_page_size": .leaf,
            "senders": .mapping([
                "allow": .leaf, "require_authentication": .leaf, "trusted_authserv_id": .leaf, "secret": .leaf,
                "calling_number": .leaf, "hide_calling_number": .leaf, "allow_international": .leaf, "cover_page": .leaf,
                "fax_body": .leaf,
            ]),
            "voicemail": .mapping([
                "enabled": .leaf, "greeting": .leaf, "ring_delay_seconds": .leaf, "max_seconds": .leaf, "silence_seconds": .leaf,
                "min_seconds": .leaf, "attach_wav": .leaf, "compressed": .leaf, "privacy_notice_only": .leaf,
                "address_book": .leaf, "fax_on_tone": .leaf,
            ]),
        ])),
        "outgoing": .mapping([
            "fax_domains": .leaf, "subject_addresses": .leaf, "max_message_bytes": .leaf, "max_pages": .leaf,
            "notify_each_retry": .leaf, "render_timeout_seconds": .leaf, "render_memory_mb": .leaf, "render_sandbox": .leaf,
            "trusted_mta": .mapping(["authserv_id": .leaf, "entry_hosts": .leaf, "internal_hosts": .leaf]),
            "replies": .mapping(["max_per_recipient_per_hour": .leaf, "admin_digest_minutes": .leaf]),
            "uncertain": .mapping(["policy": .leaf, "minutes": .leaf]),
            "mailboxes": .list(.mapping([
                "name": .leaf, "host": .leaf, "port": .leaf, "security": .leaf, "username": .leaf, "password": .leaf,
                "password_file": .leaf, "ca_file": .leaf, "folder": .leaf, "processed_folder": .leaf,
                "rejected_folder": .leaf, "poll_seconds": .leaf,
            ])),
            "line": .mapping([
                "country_code": .leaf, "area_code": .leaf, "international_prefix": .leaf, "national_prefix": .leaf,
                "outside_line_prefix": .leaf,
            ]),
            "policy": .mapping([
                "deny_prefixes": .leaf, "allow_international": .leaf, "max_jobs_per_sender_per_day": .leaf,
                "max_pages_per_sender_per_day": .leaf,
            ]),
            "retry": .mapping([
                "busy_seconds": .leaf, "no_answer_seconds": .leaf, "protocol_error_seconds": .leaf,
                "network_failure_seconds": .leaf, "max_tries": .leaf, "max_protocol_errors": .leaf, "kill_after_hours": .leaf,
            ]),
        ]),
    ])

    static func unknownKeys(in node: Node, schema: Schema, path: [PathElement]) -> [ConfigIssue] {
        switch (schema, node) {
        case (.mapping(let allowed), .mapping(let mapping)):
            var issues: [ConfigIssue] = []
            for (keyNode, value) in mapping {
                let key = keyNode.string ?? "\(keyNode)"
                if let sub = allowed[key] {
                    issues += unknownKeys(in: value, schema: sub, path: path + [.key(key)])
                } else {
                    let known = allowed.keys.sorted().joined(separator: ", ")
                    issues.append(ConfigIssue(line: keyNode.mark?.line, column: keyNode.mark?.column,
                                              path: render(path + [.key(key)]),
                                              message: "unknown key (known here: \(known))"))
                }
            }
            return issues
        case (.list(let item), .sequence(let seq)):
            return seq.enumerated().flatMap { unknownKeys(in: $1, schema: item, path: path + [.index($0)]) }
        default:
            return []
        }
    }
}
