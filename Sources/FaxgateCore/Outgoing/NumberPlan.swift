import Foundation

/// Turns what people write ("030 123 45-67", "+49 (30) 1234567", "0049301234567", "1234567") into E.164
/// and E.164 into the digits this line must dial.
///
/// Only ASCII reaches a number: the digits 0–9, the separators space, `-`, `.`, `/`, `(`, `)` and one leading
/// `+`. Everything else is refused *before* any trimming or normalisation, looking at Unicode scalars (not
/// Characters: "1\u{0301}" is one Character that compares like a digit): digits of other scripts (Arabic-Indic,
/// Devanagari, fullwidth, mathematical), combining marks, zero-width and bidi control characters, NBSP and
/// every other Unicode space. A number that looks right but is not what it looks like is never dialled.
public struct NumberPlan: Sendable, Equatable {
    public var line: LineConfig
    public init(_ line: LineConfig) { self.line = line }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible, LocalizedReason {
        case empty
        case invalidCharacters(String)
        case tooShort(String)
        case tooLong(String)
        case localNumberWithoutAreaCode(String)
        /// A character outside ASCII (its scalar value): another script's digit, an invisible or bidi character,
        /// a Unicode space. The written text is kept as `shown(_:)` makes it (escaped, capped).
        case notASCII(String, scalar: UInt32)
        public var description: String {
            switch self {
            case .empty: return "no fax number given"
            case .invalidCharacters(let s): return "'\(s)' is not a telephone number"
            case .tooShort(let s): return "'\(s)' is too short for a telephone number"
            case .tooLong(let s): return "'\(s)' is longer than any telephone number (15 digits)"
            case .localNumberWithoutAreaCode(let s): return "'\(s)' has no area code, and none is configured for this line"
            case .notASCII(let s, let scalar):
                return "'\(s)' contains \(NumberPlan.name(scalar)), which is not allowed in a fax number (only the digits 0-9, spaces, - . / ( ) and a leading +)"
            }
        }
        public func text(_ language: String) -> String {
            guard Self.german(language) else { return description }
            switch self {
            case .empty: return "keine Faxnummer angegeben"
            case .invalidCharacters(let s): return "„\(s)“ ist keine Telefonnummer"
            case .tooShort(let s): return "„\(s)“ ist zu kurz für eine Telefonnummer"
            case .tooLong(let s): return "„\(s)“ ist länger als jede Telefonnummer (15 Ziffern)"
            case .localNumberWithoutAreaCode(let s): return "„\(s)“ hat keine Vorwahl, und für diese Leitung ist keine eingestellt"
            case .notASCII(let s, let scalar):
                return "„\(s)“ enthält \(NumberPlan.name(scalar)), das in einer Faxnummer nicht erlaubt ist (nur die Ziffern 0–9, Leerzeichen, - . / ( ) und ein + am Anfang)"
            }
        }
    }

    /// Parses a written number into E.164 ("+4930123456").
    public func e164(_ written: String) throws(Failure) -> String {
        // Scalars first, before anything trims or compares Characters (see the type's comment).
        if let bad = written.unicodeScalars.first(where: { !$0.isASCII }) {
            throw .notASCII(Self.shown(written), scalar: bad.value)
        }
        if written.unicodeScalars.contains(where: { !Self.numberScalars.contains($0) }) {
            throw .invalidCharacters(Self.shown(written))
        }
        // ASCII only from here on: every Character is one scalar, so the Character-based steps below are exact.
        let trimmed = written.trimmingCharacters(in: CharacterSet(charactersIn: " "))
        guard !trimmed.isEmpty else { throw .empty }
        let written = Self.shown(written)
        // Separators people use; anything else (letters, "*", "#") is not a number we dial.
        let allowed = Set(" -./()")
        var digits = ""
        var plus = false
        for (i, ch) in trimmed.enumerated() {
            if ch == "+" && i == 0 { plus = true } else if ch.isASCIIDigit { digits.append(ch) } else if !allowed.contains(ch) {
                throw .invalidCharacters(written)
            }
        }
        // "(0)" in "+49 (0)30 …" is the national prefix people add out of habit; drop it.
        if plus, let range = trimmed.range(of: "(0)") {
            let before = trimmed[..<range.lowerBound].filter(\.isASCIIDigit)
            digits = before + trimmed[range.upperBound...].filter(\.isASCIIDigit)
        }
        let national: String
        if plus {
            return try checked("+" + digits, written)
        } else if !line.internationalPrefix.isEmpty && digits.hasPrefix(line.internationalPrefix) {
            return try checked("+" + digits.dropFirst(line.internationalPrefix.count), written)
        } else if !line.nationalPrefix.isEmpty && digits.hasPrefix(line.nationalPrefix) {
            national = String(digits.dropFirst(line.nationalPrefix.count))
        } else {
            // A local number has at least 3 digits; "12" is a typo, not something to dial.
            guard digits.count >= 3 else { throw .tooShort(written) }
            guard !line.areaCode.isEmpty else { throw .localNumberWithoutAreaCode(written) }
            national = line.areaCode + digits
        }
        return try checked("+" + line.countryCode + national, written)
    }

    private func checked(_ e164: String, _ written: String) throws(Failure) -> String {
        let count = e164.count - 1
        if count < 7 { throw .tooShort(written) }
        if count > 15 { throw .tooLong(written) }
        return e164
    }

    /// ASCII digits, the separators people write, and `+` (its place is checked later).
    static let numberScalars: Set<Unicode.Scalar> = Set("0123456789 -./()+".unicodeScalars)

    /// A written number as it may appear in a reply or a log line: ASCII printable kept, anything else as
    /// `<U+XXXX>`, at most 40 characters. The sender sees what we saw, without invisible characters acting on
    /// the text around them.
    public static func shown(_ written: String) -> String {
        var out = ""
        for scalar in written.unicodeScalars {
            if scalar.isASCII && scalar.value >= 0x20 && scalar.value < 0x7F { out.unicodeScalars.append(scalar) } else {
                out += "<U+" + String(scalar.value, radix: 16, uppercase: true).leftPadded(4) + ">"
            }
            if out.count > 40 { return String(out.prefix(40)) + "…" }
        }
        return out
    }

    /// "U+0663 ARABIC-INDIC DIGIT THREE" — names the character, since it may be invisible.
    public static func name(_ scalar: UInt32) -> String {
        let code = "U+" + String(scalar, radix: 16, uppercase: true).leftPadded(4)
        guard let s = Unicode.Scalar(scalar), let name = s.properties.name else { return code }
        return code + " (" + name + ")"
    }

    /// The digits to dial for an E.164 number from this line.
    public func dialString(_ e164: String) -> String {
        let digits = String(e164.dropFirst())
        let body: String
        if digits.hasPrefix(line.countryCode) {
            body = line.nationalPrefix + digits.dropFirst(line.countryCode.count)
        } else {
            body = line.internationalPrefix + digits
        }
        return line.outsideLinePrefix + body
    }

    public func isInternational(_ e164: String) -> Bool { !e164.dropFirst().hasPrefix(line.countryCode) }

    /// The dial string for an E.164 number, validated for the transport; nil unless `e164` is `+` and ASCII digits.
    public func dial(_ e164: String) -> DialString? {
        guard Self.isE164(e164) else { return nil }
        return DialString(dialString(e164))
    }

    /// `+` and 7…15 ASCII digits, checked on bytes.
    public static func isE164(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.first == UInt8(ascii: "+") && (8...16).contains(bytes.count) && bytes.dropFirst().allSatisfy { (0x30...0x39).contains($0) }
    }

    /// Every dial-string prefix under which this line reaches the numbers an E.164 prefix covers, so a
    /// blocked prefix is also recognised in the digits actually dialled. "+49900" on a German line with
    /// outside-line prefix "0" → ["0049900", "00900"]: the international form always, and the national one
    /// when the prefix is in our country (or shorter than our country code: "+4" blocks every national call).
    public func dialPrefixes(forE164Prefix prefix: String) -> [String] {
        guard prefix.utf8.first == UInt8(ascii: "+") else { return [] }
        let digits = String(prefix.dropFirst())
        var forms = [line.outsideLinePrefix + line.internationalPrefix + digits]
        if digits.hasPrefix(line.countryCode) {
            forms.append(line.outsideLinePrefix + line.nationalPrefix + digits.dropFirst(line.countryCode.count))
        } else if line.countryCode.hasPrefix(digits) {
            forms.append(line.outsideLinePrefix + line.nationalPrefix)
        }
        return forms
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
