import Foundation

/// How a list's search text becomes LIKE patterns, the same for every storage plugin (the web's search must find
/// the same rows whichever database the gateway runs on).
public enum SearchText {
    /// `%text%` with LIKE's own wildcards and the escape character `\` taken literally (use with `ESCAPE '\'`).
    public static func likePattern(_ text: String) -> String {
        var out = "%"
        for c in text {
            if c == "%" || c == "_" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "%"
    }

    /// The digits of a search text that looks like a telephone number (digits with spaces, `+ - . / ( )`), without
    /// leading zeros: stored numbers carry no trunk or international prefix when the network typed them, so
    /// "030 1234567" must find "301234567". nil when the text is not number-like.
    public static func numberDigits(_ text: String) -> String? {
        let allowed = Set("0123456789 +-./()")
        guard text.allSatisfy({ allowed.contains($0) }) else { return nil }
        let digits = String(text.filter { ("0"..."9").contains($0) }.drop { $0 == "0" })
        return digits.isEmpty ? nil : digits
    }
}
