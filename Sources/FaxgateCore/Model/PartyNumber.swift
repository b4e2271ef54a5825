import Foundation

/// A caller's or callee's number as the network signalled it: digits plus what they mean.
///
/// The type of number matters: "301234567" signalled as a national number is +49 30 1234567, while the same
/// digits of unknown type are just what arrived. Transports map their own codes (CAPI/Q.931 octets 3 and 3a)
/// to this value; the core never sees those codes.
public struct PartyNumber: Sendable, Equatable, Codable {
    public enum NumberType: String, Sendable, Codable, CaseIterable {
        /// Nothing is known about the digits (also network-specific, abbreviated and private numbering plans):
        /// shown exactly as received.
        case unknown
        /// Country code + national number, without any prefix ("49301234567").
        case international
        /// National number without the national (trunk) prefix ("301234567").
        case national
        /// Subscriber (local) number without the area code ("1234567").
        case subscriber
    }

    public enum Presentation: String, Sendable, Codable, CaseIterable {
        case allowed
        /// The caller withheld the number (CLIR): it must never be shown.
        case restricted
        /// The network could not deliver a number (interworking).
        case unavailable
    }

    public var digits: String
    public var type: NumberType
    public var presentation: Presentation

    public init(digits: String, type: NumberType = .unknown, presentation: Presentation = .allowed) {
        // From the line: no control or invisible character may reach a log line, the journal or a mail.
        self.digits = UntrustedText.clean(digits); self.type = type; self.presentation = presentation
    }

    /// The number may be shown (and there is one).
    public var isShowable: Bool { presentation == .allowed && !digits.isEmpty }
}

/// Renders party numbers for people, with the line's numbering (the `outgoing.line` settings: the gateway has
/// one line, so incoming numbers are read with the same country code, area code and prefixes it dials with).
///
/// - E.164: `+49 30 1234567` (the area code is split off only when it is the line's own; other area codes
///   cannot be told apart without a national table, so the rest stays in one group rather than be split wrongly).
/// - National, as dialled back from this line: `030 1234567`, abroad `0033123456789`.
/// - Unknown type, or digits that do not fit their type: shown as received (after removing control characters).
public struct PartyNumberFormat: Sendable, Equatable {
    public var line: LineConfig
    public init(line: LineConfig) { self.line = line }

    /// "+49301234567", or nil when the type does not tell (unknown type, local number without area code …).
    public func e164(_ n: PartyNumber) -> String? {
        guard let (country, national) = parts(n) else { return nil }
        return "+" + country + national
    }

    /// "+49 30 1234567" / "+33 123456789"-style grouping, or nil like `e164`.
    public func international(_ n: PartyNumber) -> String? {
        guard let (country, national) = parts(n) else { return nil }
        guard country == line.countryCode else { return "+" + country + national }
        return "+\(country) " + grouped(national)
    }

    /// What a user at this line dials to call back, without the PBX's outside-line prefix: "030 1234567".
    public func national(_ n: PartyNumber) -> String? {
        guard let (country, national) = parts(n) else { return nil }
        guard country == line.countryCode else { return line.internationalPrefix + country + national }
        return line.nationalPrefix + grouped(national)
    }

    /// One text for mails, the journal and `show`: "+49 30 1234567 / 030 1234567"; withheld and missing
    /// numbers in words; unknown types as received.
    public func text(_ n: PartyNumber?, language: String) -> String {
        let de = language.lowercased().hasPrefix("de")
        guard let n else { return de ? "unbekannt" : "unknown" }
        switch n.presentation {
        case .restricted: return de ? "unterdrückte Nummer" : "withheld number"
        case .unavailable: return de ? "nicht verfügbar" : "not available"
        case .allowed: break
        }
        let shown = Self.cleaned(n.digits)
        guard !shown.isEmpty else { return de ? "unbekannt" : "unknown" }
        if let international = international(n), let national = national(n) { return "\(international) / \(national)" }
        return shown
    }

    /// For file names: E.164 when known, else the received digits (and "+"); empty when withheld.
    public func fileNamePart(_ n: PartyNumber?) -> String {
        guard let n, n.isShowable else { return "" }
        if let e = e164(n) { return e }
        return String(n.digits.filter { $0.isASCIIDigit || $0 == "+" }.prefix(32))
    }

    /// Country code and national significant number, or nil when the digits do not fit their type.
    func parts(_ n: PartyNumber) -> (country: String, national: String)? {
        guard n.presentation == .allowed, !n.digits.isEmpty, n.digits.allSatisfy(\.isASCIIDigit), !line.countryCode.isEmpty else {
            return nil
        }
        let result: (String, String)
        switch n.type {
        case .unknown:
            return nil
        case .international:
            // The country code is what the line's own code is, when it matches; otherwise unsplit (+CC… stays one group).
            guard n.digits.first != "0" else { return nil }
            if n.digits.hasPrefix(line.countryCode) {
                result = (line.countryCode, String(n.digits.dropFirst(line.countryCode.count)))
            } else {
                result = ("", n.digits)
            }
        case .national:
            // A national significant number never starts with the trunk prefix; if it does, the type is wrong.
            if !line.nationalPrefix.isEmpty && n.digits.hasPrefix(line.nationalPrefix) { return nil }
            result = (line.countryCode, n.digits)
        case .subscriber:
            guard !line.areaCode.isEmpty else { return nil }
            result = (line.countryCode, line.areaCode + n.digits)
        }
        let total = result.0.count + result.1.count
        guard total >= 7 && total <= 15, !result.1.isEmpty else { return nil }
        return result
    }

    /// Splits the line's own area code off; any other national number stays one group.
    func grouped(_ national: String) -> String {
        if !line.areaCode.isEmpty, national.hasPrefix(line.areaCode), national.count > line.areaCode.count {
            return line.areaCode + " " + national.dropFirst(line.areaCode.count)
        }
        return national
    }

    /// What arrived, without control, format (bidi, zero-width) or line-break characters, at most 40 characters.
    public static func cleaned(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            switch s.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: continue
            default: out.append(s)
            }
        }
        return String(String(out).trimmingCharacters(in: .whitespaces).prefix(40))
    }
}
