import Foundation

/// Finds the fax numbers a mail is addressed to.
///
/// Forms: `0301234567@fax.example.com`, RFC 3192 `FAX=+49301234567/T33S=12@fax.example.com` (FAX is
/// case-insensitive, `-` and `.` are stripped, unknown `/NAME=value` qualifiers ignored), and the number in
/// the Subject for mail to a single gateway address. An optional `+SECRET` suffix in the local part is
/// handed back for the sender check and never dialled. A local part at a fax domain must be ASCII as a
/// whole (checked on scalars before anything is stripped); see `NumberPlan` for what a number may contain.
///
/// ## The Subject grammar
///
/// ```
/// subject   = *SP [prefix] number delimiter rest
/// prefix    = "Fax" [SP ("an" / "to")] [":"] SP      ; any case: "Fax an", "Fax to", "Fax:", "Fax"
/// number    = group *(1*SP group)                    ; tokens are separated by ASCII spaces
/// group     = ["+"] 1*(DIGIT / "-" / "." / "/" / "(" / ")")   ; ASCII only, at least one digit; "+" only first
/// delimiter = ":"                                    ; glued to the number or after a space
///           / SP ("-" / "–" / "—") SP                ; a dash standing alone
///           / end of the Subject
///           / SP word                                ; a token that starts with a letter (or #, quotes…)
/// ```
///
/// The number is the first token sequence that forms a valid number *and* is followed by a delimiter.
/// Anything ambiguous is refused, never guessed, with a reply that shows the form (`Fax an 030 1234567:
/// Befund`):
/// - digit groups after a complete number without a delimiter ("030 1234567 3 Seiten", "0301234567 2026 11
///   23 Befund", also "030 123 45 67", since "030 123" is a number already): a page count, a date or a case
///   number must never become part of the number;
/// - several numbers ("030 1234567 und 040 7654321", "…, 040…");
/// - a number glued to other text ("0301234567Befund", "030 1234567,");
/// - anything outside ASCII in or right after the number (other scripts' digits, invisible, bidi or Unicode
///   space characters), refused before any normalisation.
public struct FaxAddressing: Sendable {
    public var faxDomains: [String]
    public var subjectAddresses: [String]
    public var plan: NumberPlan

    public init(faxDomains: [String], subjectAddresses: [String], plan: NumberPlan) {
        self.faxDomains = faxDomains.map { $0.lowercased() }
        self.subjectAddresses = subjectAddresses.map { $0.lowercased() }
        self.plan = plan
    }

    public struct Recipient: Sendable, Equatable {
        public var written: String
        public var e164: String
        public var dialString: String
        public init(written: String, e164: String, dialString: String) {
            self.written = written; self.e164 = e164; self.dialString = dialString
        }
    }

    /// Why an address or a Subject gave no number, in the sender's language.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible, LocalizedReason {
        /// The number itself is not valid (too short, letters, other scripts…).
        case number(NumberPlan.Failure)
        /// The local part at a fax domain holds a character outside ASCII.
        case addressNotASCII(shown: String, scalar: UInt32)
        case subjectWithoutNumber
        /// A character outside ASCII where the number is read (in it, or right after it).
        case subjectNotASCII(scalar: UInt32)
        /// More digit groups follow a complete number with no delimiter: `number` is the complete one.
        case digitsAfterNumber(number: String, following: String)
        case severalNumbers
        /// A number and other text in one token ("0301234567Befund").
        case numberGluedToText(String)
        /// After the number comes something that is neither a delimiter nor a word ("/", "*").
        case unclearEnd(String)

        public var description: String { text("en") }

        public func text(_ language: String) -> String {
            let de = Self.german(language)
            let hint = de
                ? " So geht es: „Fax an 030 1234567: Befund“ – zuerst die Nummer (am Stück, oder Vorwahl und Rufnummer), dann ein Doppelpunkt und der Betreff."
                : " Write it like this: \"Fax to 030 1234567: Report\" – the number first (in one piece, or area code and number), then a colon and the subject."
            switch self {
            case .number(let failure):
                return failure.text(language)
            case .addressNotASCII(let shown, let scalar):
                return de ? "die Adresse „\(shown)“ enthält \(NumberPlan.name(scalar)); eine Faxnummer besteht nur aus den Ziffern 0–9"
                          : "the address '\(shown)' contains \(NumberPlan.name(scalar)); a fax number is made of the digits 0-9 only"
            case .subjectWithoutNumber:
                return (de ? "der Betreff beginnt nicht mit einer Faxnummer." : "the Subject does not start with a fax number.") + hint
            case .subjectNotASCII(let scalar):
                return (de ? "im Betreff steht in oder direkt nach der Nummer \(NumberPlan.name(scalar)); erlaubt sind dort nur die Ziffern 0–9, Leerzeichen und - . / ( ) sowie ein + am Anfang."
                           : "the Subject has \(NumberPlan.name(scalar)) in or right after the number; only the digits 0-9, spaces, - . / ( ) and a leading + are allowed there.") + hint
            case .digitsAfterNumber(let number, let following):
                return (de ? "im Betreff folgen auf die Nummer \(number) weitere Ziffern (\(following)) ohne Trennzeichen; ob sie zur Nummer gehören, ist nicht eindeutig, deshalb wurde nichts gewählt."
                           : "in the Subject, more digits (\(following)) follow the number \(number) without a delimiter; whether they belong to the number is unclear, so nothing was dialled.") + hint
            case .severalNumbers:
                return (de ? "der Betreff nennt mehrere Nummern; über den Betreff geht ein Fax an genau eine Nummer (für mehrere: eine Adresse je Nummer, z. B. 0301234567@…)."
                           : "the Subject names several numbers; through the Subject a fax goes to exactly one number (for several: one address per number, e.g. 0301234567@…).") + hint
            case .numberGluedToText(let token):
                return (de ? "im Betreff hängt an der Nummer weiterer Text („\(token)“)." : "in the Subject, the number is glued to other text ('\(token)').") + hint
            case .unclearEnd(let token):
                return (de ? "im Betreff ist nach der Nummer nicht zu erkennen, wo sie endet („\(token)“)."
                           : "in the Subject, it is unclear where the number ends ('\(token)').") + hint
            }
        }
    }

    public struct Result: Sendable, Equatable {
        public var recipients: [Recipient] = []
        /// Numbers that could not be understood, with the reason.
        public var invalid: [Problem] = []
        /// Secrets found in local parts (`number+SECRET@…`).
        public var secrets: [String] = []
        /// The subject with a leading fax number removed (for the cover page and reports).
        public var subject: String
        public init(subject: String) { self.subject = subject }
    }

    public func recipients(of mail: IncomingMail) -> Result {
        var result = Result(subject: mail.subject)
        var seen: Set<String> = []
        func add(_ written: String) {
            do {
                let e164 = try plan.e164(written)
                if seen.insert(e164).inserted {
                    result.recipients.append(Recipient(written: written, e164: e164, dialString: plan.dialString(e164)))
                }
            } catch {
                result.invalid.append(.number(error))
            }
        }
        var toGatewayBySubject = false
        for address in mail.to + mail.cc {
            // Split at the last "@" on scalars; compare ASCII-lowercased bytes, not canonically equivalent Strings.
            let scalars = Array(address.unicodeScalars)
            guard let at = scalars.lastIndex(of: "@") else { continue }
            let localScalars = scalars[..<at]
            let domain = Self.asciiLowercased(scalars[(at + 1)...])
            let whole = Self.asciiLowercased(scalars[...])
            if subjectAddresses.contains(where: { Array($0.utf8) == Array(whole.utf8) }) { toGatewayBySubject = true; continue }
            guard faxDomains.contains(where: { Array($0.utf8) == Array(domain.utf8) }) else { continue }
            // Before any stripping: a local part with a non-ASCII character is refused as a whole.
            if let bad = localScalars.first(where: { !$0.isASCII }) {
                result.invalid.append(.addressNotASCII(shown: NumberPlan.shown(String(String.UnicodeScalarView(localScalars))), scalar: bad.value))
                continue
            }
            var local = String(String.UnicodeScalarView(localScalars))
            if local.uppercased().hasPrefix("FAX=") {
                // RFC 3192: FAX=+12125551234/T33S=6789 — qualifiers after '/' are not part of the number.
                local = String(local.dropFirst(4))
                if let slash = local.firstIndex(of: "/") { local = String(local[..<slash]) }
                local = local.filter { $0 != "-" && $0 != "." }
            } else if let plus = local.lastIndex(of: "+"), plus != local.startIndex {
                result.secrets.append(String(local[local.index(after: plus)...]))
                local = String(local[..<plus])
            }
            add(local)
        }
        if toGatewayBySubject {
            switch Self.subjectNumber(mail.subject, plan: plan) {
            case .success(let found):
                add(found.number)
                result.subject = found.rest
            case .failure(let problem):
                result.invalid.append(problem)
            }
        }
        return result
    }

    private static func asciiLowercased<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var out = String.UnicodeScalarView()
        for s in scalars { out.append(s.isASCII ? Unicode.Scalar(UInt8(ascii: s).lowercasedASCII) : s) }
        return String(out)
    }

    /// The number at the start of a Subject, by the grammar in the type's comment: "Fax an +49 30 1234567:
    /// Befund" → ("+49 30 1234567", "Befund"). Works on Unicode scalars; nothing is normalised.
    public static func subjectNumber(_ subject: String, plan: NumberPlan) -> Swift.Result<(number: String, rest: String), Problem> {
        let s = Array(subject.unicodeScalars)
        var i = 0
        func skipSpaces() { while i < s.count && s[i] == " " { i += 1 } }
        func matches(_ word: String) -> Bool {
            let w = Array(word.unicodeScalars)
            guard i + w.count <= s.count else { return false }
            for k in 0..<w.count where !(s[i + k].isASCII && UInt8(ascii: s[i + k]).lowercasedASCII == UInt8(ascii: w[k])) { return false }
            // A word ends at a space, a colon or the end ("Faxnummer" is not "Fax").
            return i + w.count == s.count || s[i + w.count] == " " || s[i + w.count] == ":"
        }
        skipSpaces()
        if matches("fax") {
            i += 3
            skipSpaces()
            if matches("an") || matches("to") { i += 2; skipSpaces() }
            if i < s.count && s[i] == ":" { i += 1 }
            skipSpaces()
        }

        // Tokens: runs of scalars between ASCII spaces, as index ranges into `s`.
        var tokens: [Range<Int>] = []
        var j = i
        while j < s.count {
            if s[j] == " " { j += 1; continue }
            let start = j
            while j < s.count && s[j] != " " { j += 1 }
            tokens.append(start..<j)
        }
        func text(_ r: Range<Int>) -> String { String(String.UnicodeScalarView(s[r])) }
        func rest(from k: Int) -> String {
            var k = k
            while k < s.count && s[k] == " " { k += 1 }
            return text(k..<s.count)
        }
        func shown(_ r: Range<Int>) -> String { NumberPlan.shown(text(r)) }

        var groups: [String] = []
        var remainder = ""
        var t = 0
        scan: while t < tokens.count {
            let token = tokens[t]
            let first = s[token.lowerBound]
            // Anything outside ASCII that is not a letter where the number is read (up to a glued ":", after which
            // the subject text begins): refuse, whatever it is.
            let head = s[token].firstIndex(of: ":").map { token.lowerBound..<$0 } ?? token
            if let bad = s[head].first(where: { suspicious($0) }), !startsWithLetter(s[token]) {
                return .failure(.subjectNotASCII(scalar: bad.value))
            }
            if isGroup(s[token], first: groups.isEmpty) {
                groups.append(text(token)); t += 1; continue
            }
            if let colon = s[token].firstIndex(of: ":"), colon > token.lowerBound,
               isGroup(s[token.lowerBound..<colon], first: groups.isEmpty) {
                groups.append(text(token.lowerBound..<colon))
                remainder = rest(from: colon + 1)
                break scan
            }
            if first == ":" { remainder = rest(from: token.lowerBound + 1); break scan }
            if token.count == 1 && ["-", "\u{2013}", "\u{2014}"].contains(first) {
                remainder = rest(from: token.upperBound); break scan
            }
            if groups.isEmpty {
                if first.isASCII && (isDigit(first) || first == "+" || first == "(") { return .failure(.numberGluedToText(shown(token))) }
                return .failure(.subjectWithoutNumber)
            }
            if isDigit(first) || first == "+" || first == "(" {
                // "1234567," / "3Seiten": digits and more in one token right after the number.
                let trimmed = s[token].prefix { !["," , ";", "&"].contains($0) }
                if trimmed.count < token.count, t + 1 < tokens.count, isGroup(s[tokens[t + 1]], first: false) { return .failure(.severalNumbers) }
                return .failure(.numberGluedToText(shown(token)))
            }
            if [",", ";", "&", "+", "/"].contains(text(token)) {
                if t + 1 < tokens.count, isGroup(s[tokens[t + 1]], first: false) { return .failure(.severalNumbers) }
                return .failure(.unclearEnd(shown(token)))
            }
            if startsWithWord(s[token]) {
                if conjunctions.contains(text(token).lowercased()), t + 1 < tokens.count, isGroup(s[tokens[t + 1]], first: false) {
                    return .failure(.severalNumbers)
                }
                remainder = rest(from: token.lowerBound)
                break scan
            }
            return .failure(.unclearEnd(shown(token)))
        }
        guard !groups.isEmpty else { return .failure(.subjectWithoutNumber) }
        // A complete number followed by more groups: the extra groups may be a page count or a date.
        for k in 1..<max(1, groups.count) {
            let head = groups[..<k].joined(separator: " ")
            if (try? plan.e164(head)) != nil {
                return .failure(.digitsAfterNumber(number: NumberPlan.shown(head), following: NumberPlan.shown(groups[k...].joined(separator: " "))))
            }
        }
        return .success((groups.joined(separator: " "), remainder))
    }

    static let conjunctions: Set<String> = ["und", "and", "oder", "or", "sowie", "u.", "bzw.", "plus"]

    private static func isDigit(_ c: Unicode.Scalar) -> Bool { (0x30...0x39).contains(c.value) }

    /// ASCII digits and separators with at least one digit; "+" only as the first character of the first group.
    private static func isGroup(_ token: ArraySlice<Unicode.Scalar>, first: Bool) -> Bool {
        var digits = 0
        for (n, c) in token.enumerated() {
            if isDigit(c) { digits += 1 } else if c == "+" { if !(first && n == 0) { return false } } else if !"-./()".unicodeScalars.contains(c) {
                return false
            }
        }
        return digits > 0
    }

    /// Not ASCII and not part of ordinary writing: digits and numbers of any script, marks, format (zero-width,
    /// bidi), spaces and separators, controls, private use, unassigned.
    private static func suspicious(_ c: Unicode.Scalar) -> Bool {
        guard !c.isASCII else { return c.value < 0x20 || c.value == 0x7F }
        if c.properties.numericType != nil { return true }
        switch c.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator,
             .control, .privateUse, .unassigned, .surrogate:
            return true
        default:
            return false
        }
    }

    /// A token that starts with a letter (any script, not a numeral): a word. Marks after its letters are
    /// ordinary writing (a decomposed "ü"); digits, invisible characters or spaces at its start are not.
    private static func startsWithLetter(_ token: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let f = token.first else { return false }
        let p = f.properties
        guard p.isAlphabetic && p.numericType == nil && !suspicious(f) else { return false }
        // Within a word, only format/space/control characters stay suspicious (they hide or reorder text).
        return !token.contains { c in
            !c.isASCII && [.format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .control].contains(c.properties.generalCategory)
        }
    }

    /// A word, possibly behind opening punctuation: "Befund", "#SECRET", "„Befund“", "[Extern]".
    private static func startsWithWord(_ token: ArraySlice<Unicode.Scalar>) -> Bool {
        let body = token.drop { !$0.properties.isAlphabetic && !isDigit($0) && !suspicious($0) && $0 != "+" }
        return body.count < token.count ? startsWithLetter(body) : startsWithLetter(token)
    }
}

extension UInt8 {
    fileprivate var lowercasedASCII: UInt8 { (0x41...0x5A).contains(self) ? self + 0x20 : self }
}
