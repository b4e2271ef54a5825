import FaxgateCore
import Foundation

/// Replaces each match of an ICU pattern with what `replace` makes of it (nil = leave that match alone).
func replaceMatches(_ pattern: NSRegularExpression, in text: String, _ replace: (String) -> String?) -> String {
    let ns = text as NSString
    var out = ""
    var last = 0
    for match in pattern.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
        guard let replacement = replace(ns.substring(with: match.range)) else { continue }
        out += ns.substring(with: NSRange(location: last, length: match.range.location - last)) + replacement
        last = match.range.location + match.range.length
    }
    return last == 0 ? text : out + ns.substring(from: last)
}

/// Masks telephone numbers in the notations people and exchanges write them:
/// E.164 (+49 30 1234567), international with 00, national (030/1234567, 030-123 45 67), with brackets
/// ("+49 (0)30 …"), dots, and DDI suffixes ("030 1234-567", "+49 30 12345-0"), and bare digit runs — with any
/// Unicode space or dash between the groups, digits of any script, and glued to words ("Tel0301234567").
///
/// A run counts as a phone number when it starts with `+` or `0` and holds at least 5 digits, or holds at
/// least 7 digits anyway. Shorter runs (extension numbers like 100, counts, ids) stay readable: they are
/// not personal and an admin needs them. So do things that only look like long numbers: dates and times
/// (2025-01-31, 31.01.2025, 12:30:00), IPv4 addresses, decimals, hexadecimal values (0x00010101, hashes,
/// UUIDs), quantities with a unit (123456789 bytes, 86400 s) and the values of counting/id log fields
/// (bytes=, size=, job=, uidvalidity= …) that are plain digits.
/// With a `Pseudonymizer`, the same number in any notation becomes the same `[phone:token]`.
public struct PhoneNumberRedaction: RedactionRuleSet {
    public let name = "phone"
    let pseudonyms: Pseudonymizer?
    public init(pseudonyms: Pseudonymizer? = nil) { self.pseudonyms = pseudonyms }

    // Between digit groups: any space (NBSP, thin, narrow NBSP, figure, ideographic … are \p{Zs}), any dash
    // (hyphen, non-breaking hyphen, figure, en, em dash … are \p{Pd}), the minus sign, slash, dot, brackets, and
    // U+FFFD (a control character the log handler replaced). Invisible format characters are removed before.
    static let separator = #"[\p{Zs}\t\p{Pd}\x{2212}/.()\x{FFFD}]"#
    // A digit, then digits and short separator runs, then a digit; never part of a longer digit run.
    // ICU regex (NSRegularExpression): Swift's Regex has no lookbehind on this toolchain.
    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        pattern: #"(?<![\p{Nd}+\x{FF0B}])[+\x{FF0B}]?\(?\p{Nd}(?:\p{Nd}|"# + separator + #"{1,3}(?=[\p{Nd}(+\x{FF0B}]))+\p{Nd}(?!\p{Nd})"#)
    // Spans that are never numbers; blanked before matching so no number can run into or across them.
    nonisolated(unsafe) private static let notNumbers = try! NSRegularExpression(pattern: [
        #"(?<!\d)\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)"#,  // ISO date/time
        #"(?<![\d.])\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})(?![\d.])"#,  // 31.01.2025
        #"(?<![\d/])(?:\d{1,2}/\d{1,2}/\d{2,4}|\d{4}/\d{2}/\d{2})(?![\d/])"#,  // 01/31/2025, 2025/01/31
        #"(?<![\d:])\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?![\d:])"#,  // 12:30, 00:01:23.5
        // IPv4[:port]; octets never have a leading zero, so "030.123.45.67" stays a number.
        #"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?::\d+)?(?![\d.])"#,
        #"\b0[xX][0-9a-fA-F]+\b"#,  // 0x00010101
        #"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"#,  // UUID
        #"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}\b"#,  // hashes, long hex ids
    ].joined(separator: "|"))
    nonisolated(unsafe) private static let decimal = try! NSRegularExpression(pattern: #"^(?:0|[1-9]\d{0,2})[.,]\d+$"#)
    // A quantity: digits followed by a unit.
    nonisolated(unsafe) private static let unitAfter = try! NSRegularExpression(
        pattern: #"^ ?(?:bytes?|B|KiB|MiB|GiB|kB|KB|MB|GB|ms|µs|us|ns|s|sec|secs|seconds?|min|minutes?|h|hours?|days?|bit/s|bps|pages?|Seiten|px|dpi|%)(?![\p{L}\p{N}])"#)
    // A log field whose plain-digit value is a count, size, time or our own id, never a telephone number.
    nonisolated(unsafe) private static let keyBefore = try! NSRegularExpression(pattern: #"(?:^|[\s,;(\[{])([A-Za-z_][A-Za-z0-9_.\-]*)[=:] ?$"#)
    static let countingKeys: Set<String> = [
        "bytes", "size", "len", "length", "offset", "count", "pages", "seconds", "ms", "duration", "elapsed", "rate", "bitrate",
        "job", "jobs", "call", "reception", "intake", "outbox", "id", "uid", "uidvalidity", "uidnext", "messages", "exists", "pid",
        "port", "plci", "ncci", "applid", "attempt", "try", "tries", "items", "rows", "files", "held", "exported", "recipients",
        "pending", "controller", "controllers", "cause", "reason", "info", "b3", "in", "limit", "max", "total", "free", "used",
    ]
    static let countingSuffixes = ["_bytes", "_count", "_ms", "_seconds", "_size", "_id"]

    public func redact(_ text: String) -> String {
        guard text.contains(where: \.isNumber) else { return text }
        let ns = text as NSString
        let all = NSRange(location: 0, length: ns.length)
        var scan = text
        let blanks = Self.notNumbers.matches(in: text, range: all)
        if !blanks.isEmpty {
            let masked = NSMutableString(string: text)
            // Same UTF-16 length, so match ranges stay valid in the original.
            for b in blanks { masked.replaceCharacters(in: b.range, with: String(repeating: "#", count: b.range.length)) }
            scan = masked as String
        }
        var out = ""
        var last = 0
        for match in Self.pattern.matches(in: scan, range: all) {
            let s = ns.substring(with: match.range)
            guard isNumber(s, at: match.range, in: ns) else { continue }
            out += ns.substring(with: NSRange(location: last, length: match.range.location - last)) + (pseudonyms?.phone(s) ?? "[phone]")
            last = match.range.location + match.range.length
        }
        return last == 0 ? text : out + ns.substring(from: last)
    }

    func isNumber(_ s: String, at range: NSRange, in text: NSString) -> Bool {
        let digits = SubjectID.asciiDigits(s).count
        let lead = s.drop { $0 == "(" }.first
        let prefixed = lead == "+" || lead == "\u{FF0B}" || lead == "0"
        guard digits >= 7 || (prefixed && digits >= 5) else { return false }
        let whole = NSRange(location: 0, length: (s as NSString).length)
        if Self.decimal.firstMatch(in: s, range: whole) != nil { return false }
        let plain = s.allSatisfy { ("0"..."9").contains($0) || $0 == "-" }
        guard plain else { return true }
        let end = range.location + range.length
        let after = text.substring(with: NSRange(location: end, length: min(12, text.length - end)))
        if Self.unitAfter.firstMatch(in: after, range: NSRange(location: 0, length: (after as NSString).length)) != nil { return false }
        let start = max(0, range.location - 40)
        let before = text.substring(with: NSRange(location: start, length: range.location - start))
        if let m = Self.keyBefore.firstMatch(in: before, range: NSRange(location: 0, length: (before as NSString).length)) {
            let key = (before as NSString).substring(with: m.range(at: 1)).lowercased()
            if Self.countingKeys.contains(key) || Self.countingSuffixes.contains(where: { key.hasSuffix($0) }) { return false }
        }
        return true
    }
}

/// Masks e-mail addresses, keeping nothing of the local part or the domain — in any script
/// ("müller@praxis-köln.de"), and RFC 3192 fax addresses (FAX=+4930…@gw) as one address.
public struct EmailAddressRedaction: RedactionRuleSet {
    public let name = "email"
    // Before phone numbers: an RFC 3192 address (FAX=+4930…@gw) is one address, not a number.
    public let order = 10
    let pseudonyms: Pseudonymizer?
    public init(pseudonyms: Pseudonymizer? = nil) { self.pseudonyms = pseudonyms }

    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        // "=" only inside an RFC 3192 address (FAX=+49…/T33S=12@gw); elsewhere it separates a log key from its
        // value ("to=bob@x"), which must stay readable. Letters, marks and digits of any script (RFC 6531).
        pattern: #"(?<![\p{L}\p{M}\p{N}_.%+\-/])(?:(?i:FAX=)[\p{L}\p{M}\p{N}_.%+\-/=]+|[\p{L}\p{M}\p{N}_.%+\-/!#$&*^~]+)@[\p{L}\p{M}\p{N}\-]+(?:\.[\p{L}\p{M}\p{N}\-]+)*"#)

    public func redact(_ text: String) -> String {
        guard text.contains("@") || text.contains("\u{FF20}") else { return text }
        // A fullwidth "＠" is an "@" to a reader.
        let t = text.contains("\u{FF20}") ? text.replacingOccurrences(of: "\u{FF20}", with: "@") : text
        return replaceMatches(Self.pattern, in: t) { pseudonyms?.email($0) ?? "[email]" }
    }
}

/// Masks values that carry names wherever a log line labels them, whatever characters they hold: the remote
/// station id (TSI/CSID: "tsi=Dr. Müller & Partner, Köln"), a mail's Subject and attachment file names —
/// they routinely carry patient names. In message text a value runs to the next `key=` or the end of the line;
/// as a log field (metadata) it is hidden whole by `redactField`. A file name keeps its extension.
public struct StationIDRedaction: RedactionRuleSet {
    public let name = "station"
    public let order = 20
    let pseudonyms: Pseudonymizer?
    public init(pseudonyms: Pseudonymizer? = nil) { self.pseudonyms = pseudonyms }

    static let stationLabels = #"tsi|csid|cig|station(?:[_ ]?id)?|remote[_ ]?station(?:[_ ]?id)?|remoteStationID|station_name"#
    static let subjectLabels = #"subject|betreff"#
    static let fileLabels = #"file_?name|attachment|anhang|part_?name"#
    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        // label, then "=" or ":" and a value (quoted, or up to the next key= or the end of the line), or a space
        // and a quoted value ("the attachment 'Befund Müller.pdf' (application/pdf) cannot be faxed").
        pattern: #"(?i)\b(?:("# + stationLabels + #")|("# + subjectLabels + #")|("# + fileLabels + #"))(\s*[=:]\s*|\s+(?=["'„“‚‘«]))"#
            + #"(?:("[^"\n]*"|'[^'\n]*'|„[^“”\n]*[“”]|“[^”\n]*”|‚[^‘’\n]*[‘’]|‘[^’\n]*’|«[^»\n]*»)|(.*?)(?=\s+[\w.\-]+=|$))"#,
        options: [.anchorsMatchLines])
    nonisolated(unsafe) private static let fieldKinds: [(NSRegularExpression, String)] = [
        (try! NSRegularExpression(pattern: #"(?i)^(?:"# + stationLabels + #"|station)$"#), "station"),
        (try! NSRegularExpression(pattern: #"(?i)^(?:"# + subjectLabels + #")$"#), "subject"),
        (try! NSRegularExpression(pattern: #"(?i)^(?:"# + fileLabels + #"|filenames|attachments)$"#), "file"),
    ]

    func hide(_ kind: String, _ value: String) -> String {
        guard kind == "file" else { return pseudonyms?.other(kind, value) ?? "[\(kind)]" }
        let ext = (value as NSString).pathExtension
        let keep = !ext.isEmpty && ext.count <= 5 && ext.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
        return (pseudonyms?.other("file", value) ?? "[file]") + (keep ? "." + ext.lowercased() : "")
    }

    public func redactField(key: String, value: String) -> String? {
        let range = NSRange(location: 0, length: (key as NSString).length)
        guard let kind = Self.fieldKinds.first(where: { $0.0.firstMatch(in: key, range: range) != nil })?.1 else { return nil }
        let v = value.trimmingCharacters(in: .whitespaces)
        return v.isEmpty || v == "-" ? value : hide(kind, v)
    }

    public func redact(_ text: String) -> String {
        // Most lines carry no label; skip the regex (slow on Linux Foundation) for them.
        let lower = text.lowercased()
        guard ["tsi", "csid", "cig", "station", "subject", "betreff", "file", "attachment", "anhang", "part"]
            .contains(where: { lower.contains($0) }) else { return text }
        let ns = text as NSString
        var out = ""
        var last = 0
        for m in Self.pattern.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let kind = m.range(at: 1).location != NSNotFound ? "station" : m.range(at: 2).location != NSNotFound ? "subject" : "file"
            let quoted = m.range(at: 5).location != NSNotFound
            let valueRange = quoted ? m.range(at: 5) : m.range(at: 6)
            guard valueRange.location != NSNotFound else { continue }
            var value = ns.substring(with: valueRange).trimmingCharacters(in: .whitespaces)
            if quoted { value = String(value.dropFirst().dropLast()) }
            guard !value.isEmpty, !value.hasPrefix("["), value != "-" else { continue }
            out += ns.substring(with: NSRange(location: last, length: valueRange.location - last))
            out += hide(kind, value)
            last = valueRange.location + valueRange.length
        }
        return last == 0 ? text : out + ns.substring(from: last)
    }
}

/// Masks configured personal names (address book, recipients' names), whole words, any case.
public struct NameRedaction: RedactionRuleSet {
    public let name = "names"
    public let order = 30
    let pattern: NSRegularExpression?
    let pseudonyms: Pseudonymizer?

    public init(names: [String], pseudonyms: Pseudonymizer? = nil) {
        let words = names.map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.count >= 2 }
            .sorted { $0.count > $1.count }  // longest first: "Anna Muster" before "Anna"
            .map { NSRegularExpression.escapedPattern(for: $0).replacingOccurrences(of: " ", with: #"\s+"#) }
        pattern = words.isEmpty ? nil : try? NSRegularExpression(pattern: #"(?i)(?<!\w)(?:"# + words.joined(separator: "|") + #")(?!\w)"#)
        self.pseudonyms = pseudonyms
    }

    public func redact(_ text: String) -> String {
        guard let pattern else { return text }
        return replaceMatches(pattern, in: text) { pseudonyms?.other("name", $0) ?? "[name]" }
    }
}

/// Admin-defined regular expressions from `privacy.redact_patterns`; every match becomes [redacted].
public struct PatternRedaction: RedactionRuleSet {
    public let name = "patterns"
    public let order = 40
    let patterns: [NSRegularExpression]
    public init(patterns: [String]) throws {
        self.patterns = try patterns.map { try NSRegularExpression(pattern: $0) }
    }
    public func redact(_ text: String) -> String {
        patterns.reduce(text) { acc, p in
            p.stringByReplacingMatches(in: acc, range: NSRange(location: 0, length: (acc as NSString).length), withTemplate: "[redacted]")
        }
    }
}

/// Fax and voice content never reaches a log: long base64 runs (a MIME part, an encoded page) and runs of
/// binary bytes (SFF, TIFF, audio dumped by mistake) become "[content removed]".
public struct ContentRedaction: RedactionRuleSet {
    public let name = "content"
    public let order = 5
    public init() {}
    nonisolated(unsafe) private static let base64 = try! NSRegularExpression(pattern: #"[A-Za-z0-9+/]{60,}={0,2}"#)
    nonisolated(unsafe) private static let binary = try! NSRegularExpression(pattern: #"[\x{0}-\x{8}\x{e}-\x{1f}\x{7f}-\x{9f}\x{fffd}]{4,}[^\n]*"#)

    public func redact(_ text: String) -> String {
        // Cheap scans first: the regexes only run on lines that can match them.
        let binary = text.unicodeScalars.contains { v in
            v.value <= 8 || (0x0E...0x1F).contains(v.value) || (0x7F...0x9F).contains(v.value) || v.value == 0xFFFD
        }
        guard binary || Self.hasBase64Run(text) else { return text }
        var t = text
        for p in [Self.binary, Self.base64] {
            t = p.stringByReplacingMatches(in: t, range: NSRange(location: 0, length: (t as NSString).length), withTemplate: "[content removed]")
        }
        return t
    }
}

extension ContentRedaction {
    /// True when the text has 60 or more base64 characters in a row (the shortest run the rule removes).
    static func hasBase64Run(_ text: String) -> Bool {
        var run = 0
        for b in text.utf8 {
            let isBase64 = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2B || b == 0x2F
            run = isBase64 ? run + 1 : 0
            if run >= 60 { return true }
        }
        return false
    }
}

/// The rule sets this plugin offers, by configuration name.
public enum BasicRedaction {
    public static let ruleSets: [String: any RedactionRuleSet] = [
        "phone": PhoneNumberRedaction(),
        "email": EmailAddressRedaction(),
    ]

    /// Names usable in `log.redaction`.
    public static let names = ["phone", "email", "station", "names", "patterns", "content"]

    /// Builds the named rule sets with pseudonyms (when given) and the configured names and patterns.
    /// "content", "station", "names" and "patterns" are always added: content never belongs in a log, and
    /// an admin who configured names or patterns wants them applied.
    public static func ruleSets(named: [String], pseudonyms: Pseudonymizer?, privacy: PrivacySettings) throws -> [any RedactionRuleSet] {
        var sets: [any RedactionRuleSet] = []
        for name in Set(named + ["content", "station", "names", "patterns"]).sorted() {
            switch name {
            case "phone": sets.append(PhoneNumberRedaction(pseudonyms: pseudonyms))
            case "email": sets.append(EmailAddressRedaction(pseudonyms: pseudonyms))
            case "station": sets.append(StationIDRedaction(pseudonyms: pseudonyms))
            case "names": sets.append(NameRedaction(names: privacy.names, pseudonyms: pseudonyms))
            case "patterns": sets.append(try PatternRedaction(patterns: privacy.redactPatterns))
            case "content": sets.append(ContentRedaction())
            default: throw UnknownRuleSet(name: name)
            }
        }
        return sets
    }

    /// Everything, for support snapshots: all rules, whatever the log configuration says.
    public static func snapshotRedactor(pseudonyms: Pseudonymizer?, privacy: PrivacySettings) throws -> Redactor {
        Redactor(try ruleSets(named: names, pseudonyms: pseudonyms, privacy: privacy))
    }

    public struct UnknownRuleSet: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "unknown redaction rule set '\(name)' (available: \(BasicRedaction.names.joined(separator: ", ")))" }
    }
}
