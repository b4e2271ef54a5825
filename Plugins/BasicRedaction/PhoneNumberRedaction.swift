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
/// ("+49 (0)30 …"), dots, and DDI suffixes ("030 1234-567", "+49 30 12345-0"), and bare digit runs.
///
/// A run counts as a phone number when it starts with `+` or `0` and holds at least 5 digits, or holds at
/// least 7 digits anyway. Shorter runs (extension numbers like 100, counts, ids) stay readable: they are
/// not personal and an admin needs them. Dates and times (2025-01-31, 12:30:00) are not numbers.
/// With a `Pseudonymizer`, the same number in any notation becomes the same `[phone:token]`.
public struct PhoneNumberRedaction: RedactionRuleSet {
    public let name = "phone"
    let pseudonyms: Pseudonymizer?
    public init(pseudonyms: Pseudonymizer? = nil) { self.pseudonyms = pseudonyms }

    // A digit, then digits and single separators, then a digit. Separators never start or end a match.
    // ICU regex (NSRegularExpression): Swift's Regex has no lookbehind on this toolchain.
    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        pattern: #"(?<![\w+])\+?\(?\d(?:\d|[ \-/.()]{1,3}(?=[\d(+]))+\d(?!\w)"#)
    // ISO dates/timestamps are what every log line starts with; they are not personal.
    nonisolated(unsafe) private static let dateLike = try! NSRegularExpression(
        pattern: #"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}(?::\d{2})*)?$"#)

    public func redact(_ text: String) -> String {
        guard text.contains(where: \.isNumber) else { return text }
        return replaceMatches(Self.pattern, in: text) { s in
            let digits = s.filter(\.isNumber).count
            let prefixed = s.hasPrefix("+") || s.hasPrefix("0") || s.hasPrefix("(0") || s.hasPrefix("(+")
            guard digits >= 7 || (prefixed && digits >= 5) else { return nil }
            if Self.dateLike.firstMatch(in: s, range: NSRange(location: 0, length: (s as NSString).length)) != nil { return nil }
            return pseudonyms?.phone(s) ?? "[phone]"
        }
    }
}

/// Masks e-mail addresses, keeping nothing of the local part or the domain.
public struct EmailAddressRedaction: RedactionRuleSet {
    public let name = "email"
    // Before phone numbers: an RFC 3192 address (FAX=+4930…@gw) is one address, not a number.
    public let order = 10
    let pseudonyms: Pseudonymizer?
    public init(pseudonyms: Pseudonymizer? = nil) { self.pseudonyms = pseudonyms }

    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        // "=" only inside an RFC 3192 address (FAX=+49…/T33S=12@gw); elsewhere it separates a log key from its
        // value ("to=bob@x"), which must stay readable.
        pattern: #"(?<![\w.%+\-/])(?:(?i:FAX=)[A-Za-z0-9._%+\-/=]+|[A-Za-z0-9._%+\-/]+)@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*"#)

    public func redact(_ text: String) -> String {
        guard text.contains("@") else { return text }
        return replaceMatches(Self.pattern, in: text) { pseudonyms?.email($0) ?? "[email]" }
    }
}

/// Masks the remote station id (TSI/CSID) wherever a log line labels it, letters included
/// ("tsi=PRAXIS MUELLER"), up to the next `key=` or the end of the line. Digits-only ids are also caught
/// by the phone rule; this one catches names typed into fax machines.
public struct StationIDRedaction: RedactionRuleSet {
    public let name = "station"
    public let order = 20
    let pseudonyms: Pseudonymizer?
    public init(pseudonyms: Pseudonymizer? = nil) { self.pseudonyms = pseudonyms }

    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        pattern: #"(?i)\b(tsi|csid|cig|station(?:[_ ]?id)?|remote[_ ]?station(?:[_ ]?id)?|remoteStationID)(\s*[=:]\s*)("[^"\n]*"|'[^'\n]*'|.*?)(?=\s+[\w.\-]+=|[,;\])]|$)"#,
        options: [.anchorsMatchLines])

    public func redact(_ text: String) -> String {
        // Most lines carry no station label; skip the regex (slow on Linux Foundation) for them.
        let lower = text.lowercased()
        guard ["tsi", "csid", "cig", "station"].contains(where: { lower.contains($0) }) else { return text }
        let ns = text as NSString
        var out = ""
        var last = 0
        for m in Self.pattern.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let valueRange = m.range(at: 3)
            var value = ns.substring(with: valueRange).trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty, !value.hasPrefix("[") else { continue }
            if value.hasPrefix("\"") || value.hasPrefix("'") { value = String(value.dropFirst().dropLast()) }
            out += ns.substring(with: NSRange(location: last, length: valueRange.location - last))
            out += pseudonyms?.other("station", value) ?? "[station]"
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
