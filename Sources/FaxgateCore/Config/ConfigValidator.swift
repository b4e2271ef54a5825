import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Checks a decoded configuration for mistakes the YAML types cannot express.
public enum ConfigValidator {
    struct Problem {
        var path: [ConfigLoader.PathElement]
        var message: String
    }

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    static func validate(_ c: Configuration) -> [Problem] {
        var problems: [Problem] = []
        func problem(_ path: [ConfigLoader.PathElement], _ message: String) { problems.append(Problem(path: path, message: message)) }

        if !c.spoolDirectory.hasPrefix("/") { problem([.key("spool_directory")], "must be an absolute path") }
        if !logLevels.contains(c.log.level) { problem([.key("log"), .key("level")], "must be one of \(logLevels.joined(separator: ", "))") }
        if !logLevels.contains(c.log.redactFrom) { problem([.key("log"), .key("redact_from")], "must be one of \(logLevels.joined(separator: ", "))") }

        let capiDrivers = ["standard", "rcapi", "fritzbox"]
        if !capiDrivers.contains(c.capi.driver) { problem([.key("capi"), .key("driver")], "must be one of \(capiDrivers.joined(separator: ", "))") }
        if c.capi.driver != "standard" && c.capi.host == nil { problem([.key("capi")], "driver \(c.capi.driver) needs a host") }
        if let port = c.capi.port, !(1..<32768).contains(port) {
            // libcapi20 stores the port in a signed short.
            problem([.key("capi"), .key("port")], "must be between 1 and 32767 (libcapi20 limit)")
        }
        for (i, controller) in c.capi.controllers.enumerated() where !(1...127).contains(controller) {
            problem([.key("capi"), .key("controllers"), .index(i)], "controller numbers run from 1 to 127")
        }

        let securities = ["starttls", "tls", "none"]
        if !securities.contains(c.smtp.security) {
            problem([.key("smtp"), .key("security")], "must be one of \(securities.joined(separator: ", "))")
        } else if c.smtp.security == "none" && !["127.0.0.1", "::1", "localhost"].contains(c.smtp.host) {
            // Faxes are health and legal data: clear text is only acceptable to a relay on this machine.
            problem([.key("smtp"), .key("security")], "'none' is only allowed for a server on this machine; use starttls or tls")
        }
        if !(1...65535).contains(c.smtp.port) { problem([.key("smtp"), .key("port")], "must be between 1 and 65535") }
        if c.smtp.password != nil && c.smtp.passwordFile != nil {
            problem([.key("smtp"), .key("password_file")], "set either password or password_file, not both")
        }
        if (c.smtp.password != nil || c.smtp.passwordFile != nil) && c.smtp.username == nil {
            problem([.key("smtp"), .key("username")], "a password needs a username")
        }
        if c.smtp.retryInitialSeconds < 1 || c.smtp.retryMaxSeconds < c.smtp.retryInitialSeconds {
            problem([.key("smtp"), .key("retry_max_seconds")], "retry delays must be ≥ 1 s and max ≥ initial")
        }
        if MailboxSyntax.address(in: c.mail.from) == nil { problem([.key("mail"), .key("from")], "not an e-mail address: \(c.mail.from)") }
        if let admin = c.mail.adminAddress, !MailboxSyntax.isAddress(admin) {
            problem([.key("mail"), .key("admin_address")], "not an e-mail address: \(admin)")
        }

        if c.extensions.isEmpty { problem([.key("extensions")], "at least one extension is needed") }
        var seenNames: Set<String> = []
        var claimed: [(NumberPattern, String)] = []
        for (i, ext) in c.extensions.enumerated() {
            let base: [ConfigLoader.PathElement] = [.key("extensions"), .index(i)]
            if !seenNames.insert(ext.name).inserted { problem(base + [.key("name")], "extension name '\(ext.name)' is used twice") }
            if ext.numbers.isEmpty { problem(base + [.key("numbers")], "needs at least one number") }
            for (j, text) in ext.numbers.enumerated() {
                guard let pattern = NumberPattern(text) else {
                    problem(base + [.key("numbers"), .index(j)], "'\(text)' is not a number or a range like 120-129 of equally long numbers")
                    continue
                }
                if let other = claimed.first(where: { $0.0.overlaps(pattern) }) {
                    problem(base + [.key("numbers"), .index(j)], "\(pattern) overlaps \(other.0) of extension '\(other.1)'")
                }
                claimed.append((pattern, ext.name))
            }
            if ext.email.isEmpty { problem(base + [.key("email")], "needs at least one address") }
            for (j, address) in ext.email.enumerated() where !MailboxSyntax.isAddress(address) {
                problem(base + [.key("email"), .index(j)], "not an e-mail address: \(address)")
            }
            for (j, format) in ext.formats.enumerated() where Extension.Format(rawValue: format.lowercased()) == nil {
                problem(base + [.key("formats"), .index(j)], "unknown format '\(format)' (pdf, tiff)")
            }
            if ext.formats.isEmpty { problem(base + [.key("formats")], "needs at least one format") }
            if Extension.Language(rawValue: ext.language) == nil { problem(base + [.key("language")], "must be de or en") }
            if Extension.PDFPageSize(rawValue: ext.pdfPageSize.lowercased()) == nil {
                problem(base + [.key("pdf_page_size")], "must be a4 or exact")
            }
            if let sid = ext.stationID {
                if sid.count > 20 || !sid.allSatisfy({ $0.isASCIIDigit || $0 == "+" || $0 == " " }) {
                    problem(base + [.key("station_id")], "a station id has at most 20 characters: digits, + and spaces")
                }
            }
            if let headline = ext.headline, headline.utf8.count > 100 { problem(base + [.key("headline")], "at most 100 bytes") }
            if !(0...60).contains(ext.ringDelaySeconds) { problem(base + [.key("ring_delay_seconds")], "between 0 and 60") }
            if let vm = ext.voicemail {
                for p in validateVoicemail(vm) { problem(base + [.key("voicemail")] + p.path, p.message) }
            }
        }
        problems += validateCAPI(c)
        problems += validateUnknownNumbers(c)
        problems += validateOutgoing(c)
        problems += validateWeb(c)
        problems += validateStorage(c)
        if let name = c.catchAll, !c.extensions.contains(where: { $0.name == name }) {
            problem([.key("catch_all")], "no extension is named '\(name)'")
        }
        problems += PrivacyConfigSchema.validate(c)
        // Log lines outlive the session and reach support: phone numbers and addresses are always redacted from
        // info up (debug and trace may stay raw on stderr for a developer at the box).
        for rule in ["phone", "email"] where !c.log.redaction.contains(rule) {
            problem([.key("log"), .key("redaction")], "must include \(rule): without it personal data reaches the logs")
        }
        if let from = logLevels.firstIndex(of: c.log.redactFrom), let info = logLevels.firstIndex(of: "info"), from > info {
            problem([.key("log"), .key("redact_from")], "must be info or lower: from \(c.log.redactFrom) up only, personal data reaches the journal")
        }
        return problems
    }

    /// What `config check` finds on disk, beyond the file's content: secrets a local user could read.
    /// Errors: a world-readable configuration holding inline secrets (password:, secret: …), a password file
    /// that is missing, unreadable or world-readable. `configPath` is the file that was loaded.
    public static func secretFileProblems(configPath: String, config c: Configuration) -> [String] {
        var problems: [String] = []
        let inline = (c.smtp.password != nil ? ["smtp.password"] : [])
            + c.outgoing.mailboxes.enumerated().compactMap { $1.password != nil ? "outgoing.mailboxes[\($0)].password" : nil }
            + c.extensions.enumerated().compactMap { $1.senders.secret != nil ? "extensions[\($0)].senders.secret" : nil }
        if !inline.isEmpty, let mode = fileMode(configPath), mode & 0o004 != 0 {
            problems.append("\(inline.joined(separator: ", ")): inline secret in a world-readable file (mode \(String(mode, radix: 8))); chmod o-r \(configPath) or use password_file")
        }
        let files = (c.smtp.passwordFile.map { [("smtp.password_file", $0)] } ?? [])
            + c.outgoing.mailboxes.enumerated().compactMap { i, m in m.passwordFile.map { ("outgoing.mailboxes[\(i)].password_file", $0) } }
        for (key, path) in files {
            guard let mode = fileMode(path) else { problems.append("\(key): \(path) does not exist"); continue }
            if mode & 0o004 != 0 {
                problems.append("\(key): \(path) is world-readable (mode \(String(mode, radix: 8))); chmod 0640 and chgrp to the service group")
            } else if !FileManager.default.isReadableFile(atPath: path) {
                problems.append("\(key): cannot read \(path)")
            }
        }
        return problems
    }

    static func fileMode(_ path: String) -> mode_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }
}

/// Just enough address syntax to catch typos in the configuration; the MTA has the last word.
public enum MailboxSyntax {
    public static func isAddress(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasSuffix(".") else {
            return parts.count == 2 && !parts[0].isEmpty && parts[1] == "localhost"
        }
        return !s.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "," || $0.asciiValue.map { $0 < 32 } == true })
    }

    /// Splits "Name <addr@x>" or "addr@x" into (name, address).
    public static func address(in s: String) -> (name: String?, address: String)? {
        let t = s.trimmingCharacters(in: .whitespaces)
        if let open = t.lastIndex(of: "<"), t.hasSuffix(">") {
            let addr = String(t[t.index(after: open)..<t.index(before: t.endIndex)])
            var name = t[..<open].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("\"") && name.hasSuffix("\"") && name.count >= 2 { name = String(name.dropFirst().dropLast()) }
            return isAddress(addr) ? (name.isEmpty ? nil : name, addr) : nil
        }
        return isAddress(t) ? (nil, t) : nil
    }
}
