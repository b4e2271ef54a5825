import FaxgateCore

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
    nonisolated(unsafe) private static let pattern = try! Regex(#"(?<![\w+])(\+|00)?\(?\d(?:[\d]|[ \-/.()](?=[\d(])){3,}\d(?!\w)"#)

    public func redact(_ text: String) -> String {
        guard text.contains(where: \.isNumber) else { return text }
        return text.replacing(Self.pattern) { match in
            let s = text[match.range]
            let digits = s.filter(\.isNumber).count
            let international = s.hasPrefix("+") || s.hasPrefix("00")
            let national = s.hasPrefix("0") || s.hasPrefix("(0")
            if digits >= 7 || ((international || national) && digits >= 5) { return "[phone]" }
            return String(s)
        }
    }
}

/// Masks e-mail addresses, keeping nothing of the local part or the domain.
public struct EmailAddressRedaction: RedactionRuleSet {
    public let name = "email"
    public init() {}

    nonisolated(unsafe) private static let pattern = try! Regex(#"[A-Za-z0-9._%+\-=/]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*"#)

    public func redact(_ text: String) -> String {
        guard text.contains("@") else { return text }
        return text.replacing(Self.pattern, with: "[email]")
    }
}

/// The rule sets this plugin offers, by configuration name.
public enum BasicRedaction {
    public static let ruleSets: [String: any RedactionRuleSet] = [
        "phone": PhoneNumberRedaction(),
        "email": EmailAddressRedaction(),
    ]
}
