import Foundation

/// A data subject as the admin names it on the command line or in `privacy.legal_holds`: a telephone
/// number in any notation or an e-mail address. Normalized so "+49 30 1234567", "030/1234567" and
/// "0049301234567" are the same person when the installation's country code is 49.
public struct SubjectID: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable { case phone, email }
    public var kind: Kind
    /// Digits in international form without "+" (phone) or the lower-cased address (email).
    public var normalized: String

    public init(kind: Kind, normalized: String) { self.kind = kind; self.normalized = normalized }

    /// nil when the text is neither an address nor holds at least 3 digits.
    public init?(_ text: String, countryCode: String?) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.contains("@") {
            kind = .email; normalized = t.precomposedStringWithCanonicalMapping.lowercased()
            return
        }
        guard let n = Self.normalizePhone(t, countryCode: countryCode) else { return nil }
        kind = .phone; normalized = n
    }

    public var description: String { kind == .phone ? "+" + normalized : normalized }

    /// International digits: "+" or "00" starts an international number; a single leading "0" is a national
    /// number and gets the country code; bare digits without a prefix are a national number as the network
    /// delivers it (type "national": no trunk zero, e.g. "301234567") and get the country code too. So
    /// "+49 30 1234567", "030/123 45 67", "0049301234567" and "301234567" are one number. Digits of any script
    /// count as their value; without a country code national numbers stay as written.
    public static func normalizePhone(_ text: String, countryCode: String?) -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        // "+49 (0)30 …": the bracketed trunk zero is not dialled internationally.
        let plus = t.hasPrefix("+") || t.hasPrefix("\u{FF0B}")
        var digits = asciiDigits(plus ? t.replacingOccurrences(of: "(0)", with: "") : t)
        guard digits.count >= 3 else { return nil }
        if plus { return digits }
        if digits.hasPrefix("00") { return String(digits.dropFirst(2)) }
        guard let cc = countryCode, !cc.isEmpty else { return digits }
        if digits.hasPrefix("0") { digits.removeFirst() }
        return cc + digits
    }

    /// The digits of `text` in ASCII, whatever script they were written in ("０３０" → "030").
    public static func asciiDigits(_ text: String) -> String {
        String(text.compactMap { c -> Character? in
            guard c.isNumber, let v = c.wholeNumberValue, (0...9).contains(v) else { return nil }
            // Only decimal digits (Nd): "½" or "Ⅻ" are numbers but not digits.
            guard c.unicodeScalars.first?.properties.numericType == .decimal else { return nil }
            return Character(String(v))
        })
    }

    /// Whether a stored value (caller number, station id, address) is this subject.
    public func matches(_ value: String?, countryCode: String?) -> Bool {
        guard let value, let other = SubjectID(value, countryCode: countryCode) else { return false }
        return other == self
    }
}
