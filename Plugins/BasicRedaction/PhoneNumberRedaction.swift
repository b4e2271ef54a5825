import FaxgateCore
import Foundation

/// Masks telephone numbers in the notations people and exchanges write them:
/// E.164 (+49 30 1234567), national (030/1234567, 030-123 45 67), with brackets, and bare digit runs.
///
/// A run counts as a phone number when it starts with `+` or `0` and holds at least 5 digits, or holds at
/// least 7 digits anyway. Shorter runs (extension numbers like 100, counts, ids) stay readable: they are
/// not personal and an admin needs them.
public struct PhoneNumberRedaction: RedactionRuleSet {
    public let name = "phone"
    public init() {}

    // A digit, then digits and single separators, then a digit. Separators never start or end a match.
    // ICU regex (NSRegularExpression): Swift's Regex has no lookbehind on this toolchain.
    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        pattern: #"(?<![\w+])\+?\(?\d(?:\d|[ \-/.()]{1,2}(?=[\d(])){3,}\d(?!\w)"#)

    public func redact(_ text: String) -> String {
        guard text.contains(where: \.isNumber) else { return text }
        let ns = text as NSString
        var out = ""
        var last = 0
        for match in Self.pattern.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let s = ns.substring(with: match.range)
            let digits = s.filter(\.isNumber).count
            let prefixed = s.hasPrefix("+") || s.hasPrefix("0") || s.hasPrefix("(0")
            guard digits >= 7 || (prefixed && digits >= 5) else { continue }
            out += ns.substring(with: NSRange(location: last, length: match.range.location - last)) + "[phone]"
            last = match.range.location + match.range.length
        }
        return last == 0 ? text : out + ns.substring(from: last)
    }
}

/// Masks e-mail addresses, keeping nothing of the local part or the domain.
public struct EmailAddressRedaction: RedactionRuleSet {
    public let name = "email"
    // Before phone numbers: an RFC 3192 address (FAX=+4930…@gw) is one address, not a number.
    public let order = 10
    public init() {}

    nonisolated(unsafe) private static let pattern = try! NSRegularExpression(
        pattern: #"(?i:FAX=)?[A-Za-z0-9._%+\-/]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*"#)

    public func redact(_ text: String) -> String {
        guard text.contains("@") else { return text }
        return Self.pattern.stringByReplacingMatches(
            in: text, range: NSRange(location: 0, length: (text as NSString).length), withTemplate: "[email]")
    }
}

/// The rule sets this plugin offers, by configuration name.
public enum BasicRedaction {
    public static let ruleSets: [String: any RedactionRuleSet] = [
        "phone": PhoneNumberRedaction(),
        "email": EmailAddressRedaction(),
    ]
}
