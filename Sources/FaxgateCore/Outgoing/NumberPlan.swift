import Foundation

/// Turns what people write ("030 123 45-67", "+49 (30) 1234567", "0049301234567", "1234567") into E.164
/// and E.164 into the digits this line must dial.
public struct NumberPlan: Sendable, Equatable {
    public var line: LineConfig
    public init(_ line: LineConfig) { self.line = line }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible, LocalizedReason {
        case empty
        case invalidCharacters(String)
        case tooShort(String)
        case tooLong(String)
        case localNumberWithoutAreaCode(String)
        public var description: String {
            switch self {
            case .empty: return "no fax number given"
            case .invalidCharacters(let s): return "'\(s)' is not a telephone number"
            case .tooShort(let s): return "'\(s)' is too short for a telephone number"
            case .tooLong(let s): return "'\(s)' is longer than any telephone number (15 digits)"
            case .localNumberWithoutAreaCode(let s): return "'\(s)' has no area code, and none is configured for this line"
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
            }
        }
    }

    /// Parses a written number into E.164 ("+4930123456").
    public func e164(_ written: String) throws(Failure) -> String {
        let trimmed = written.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .empty }
        // Separators people use; anything else (letters, "*", "#") is not a number we dial.
        let allowed = Set(" -./()\u{00A0}")
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
}
