/// An RFC 5322 mailbox: `Display Name <local@domain>`.
public struct MailAddress: Sendable, Hashable, CustomStringConvertible {
    public var address: String
    public var displayName: String?

    /// Does not throw so call sites stay simple; `render` sanitizes anyway. Use `validated` for input from users.
    public init(_ address: String, displayName: String? = nil) {
        self.address = address
        self.displayName = displayName
    }

    /// Builds an address and rejects what cannot be a plain mailbox (CR/LF, controls, spaces, not exactly one `@`).
    public static func validated(_ address: String, displayName: String? = nil) throws(MailAddressError) -> MailAddress {
        let candidate = MailAddress(address, displayName: displayName)
        if let problem = candidate.validationProblem { throw MailAddressError(address: address, reason: problem) }
        return candidate
    }

    public var isValid: Bool { validationProblem == nil }

    var validationProblem: String? {
        if address.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F || "<>()[],;:\\\"".unicodeScalars.contains($0) }) {
            return "contains spaces, control characters or address delimiters"
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        if parts.count != 2 { return "must contain exactly one @" }
        if parts[0].isEmpty || parts[1].isEmpty { return "local part and domain must not be empty" }
        return nil
    }

    /// The bare address with everything that could break a header removed (defence in depth after validation).
    var sanitizedAddress: String {
        String(String.UnicodeScalarView(address.unicodeScalars.filter {
            $0.value > 0x20 && $0.value != 0x7F && !(0x80...0x9F).contains($0.value) && !"<>()[],;:\\\"".unicodeScalars.contains($0)
        }))
    }

    /// Header tokens for this mailbox: display name (atoms, quoted string or encoded words) then `<address>`.
    func headerTokens(firstLimit: Int = 75) -> [String] {
        let angle = "<\(sanitizedAddress)>"
        guard let rawName = displayName else { return [angle] }
        let name = MIMEEncoding.sanitizeHeaderText(rawName).trimmingSpaces()
        if name.isEmpty { return [angle] }
        return MIMEEncoding.phraseTokens(name, firstLimit: firstLimit) + [angle]
    }

    public var description: String { headerTokens().joined(separator: " ") }
}

public struct MailAddressError: Error, Sendable, CustomStringConvertible {
    public var address: String
    public var reason: String
    public var description: String { "invalid mail address \"\(MIMEEncoding.sanitizeHeaderText(address))\": \(reason)" }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars = scalars.dropFirst() }
        while scalars.last == " " { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
