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
            kind = .email; normalized = t.lowercased()
            return
        }
        guard let n = Self.normalizePhone(t, countryCode: countryCode) else { return nil }
        kind = .phone; normalized = n
    }

    public var description: String { kind == .phone ? "+" + normalized : normalized }

    /// International digits: "+" or "00" starts an international number; a single leading "0" is a national
    /// number and gets the country code (when configured); anything else is taken as it is.
    public static func normalizePhone(_ text: String, countryCode: String?) -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        var digits = t.filter(\.isASCIIDigit)
        // "+49 (0)30 …": the bracketed trunk zero is not dialled internationally.
        if t.hasPrefix("+"), t.contains("(0)") { digits = String(t.replacingOccurrences(of: "(0)", with: "").filter(\.isASCIIDigit)) }
        guard digits.count >= 3 else { return nil }
        if t.hasPrefix("+") { return digits }
        if digits.hasPrefix("00") { return String(digits.dropFirst(2)) }
        if digits.hasPrefix("0"), let cc = countryCode, !cc.isEmpty { return cc + digits.dropFirst() }
        return digits
    }

    /// Whether a stored value (caller number, station id, address) is this subject.
    public func matches(_ value: String?, countryCode: String?) -> Bool {
        guard let value, let other = SubjectID(value, countryCode: countryCode) else { return false }
        return other == self
    }
}
