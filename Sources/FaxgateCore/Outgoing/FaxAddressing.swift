import Foundation

/// Finds the fax numbers a mail is addressed to.
///
/// Forms: `0301234567@fax.example.com`, RFC 3192 `FAX=+49301234567/T33S=12@fax.example.com` (FAX is
/// case-insensitive, `-` and `.` are stripped, unknown `/NAME=value` qualifiers ignored), and the number in
/// the Subject for mail to a single gateway address. An optional `+SECRET` suffix in the local part is
/// handed back for the sender check and never dialled.
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
    }

    public struct Result: Sendable, Equatable {
        public var recipients: [Recipient] = []
        /// Numbers that could not be understood, with the reason.
        public var invalid: [String] = []
        /// Secrets found in local parts (`number+SECRET@…`).
        public var secrets: [String] = []
        /// The subject with a leading fax number removed (for the cover page and reports).
        public var subject: String
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
                result.invalid.append(error.description)
            }
        }
        var toGatewayBySubject = false
        for address in mail.to + mail.cc {
            let lower = address.lowercased()
            guard let at = lower.lastIndex(of: "@") else { continue }
            let domain = String(lower[lower.index(after: at)...])
            if subjectAddresses.contains(lower) { toGatewayBySubject = true; continue }
            guard faxDomains.contains(domain) else { continue }
            var local = String(address[..<address.index(address.startIndex, offsetBy: lower.distance(from: lower.startIndex, to: at))])
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
            if let (number, rest) = Self.leadingNumber(in: mail.subject) {
                add(number)
                result.subject = rest
            } else {
                result.invalid.append("the Subject does not start with a fax number (e.g. \"030 1234567 Befund Müller\")")
            }
        }
        return result
    }

    /// "Fax an +49 30 1234567: Befund" / "0301234567 Befund" → ("+49 30 1234567", "Befund").
    static func leadingNumber(in subject: String) -> (String, String)? {
        var s = Substring(subject.trimmingCharacters(in: .whitespaces))
        for prefix in ["fax an", "fax to", "fax:", "fax"] where s.lowercased().hasPrefix(prefix) {
            s = s.dropFirst(prefix.count).drop { $0 == " " || $0 == ":" }
            break
        }
        var number = ""
        var index = s.startIndex
        while index < s.endIndex {
            let ch = s[index]
            if ch.isASCIIDigit || (ch == "+" && number.isEmpty) || (!number.isEmpty && " -/().".contains(ch)) {
                number.append(ch)
                index = s.index(after: index)
            } else { break }
        }
        number = number.trimmingCharacters(in: CharacterSet(charactersIn: " -/.("))
        guard number.filter(\.isASCIIDigit).count >= 3 else { return nil }
        let rest = s[s.index(s.startIndex, offsetBy: number.count)...].drop { " :-–".contains($0) }
        return (number, String(rest))
    }
}
