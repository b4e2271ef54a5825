import Foundation

/// A file attached to a message, sent base64-encoded.
public struct MailAttachment: Sendable {
    public var filename: String
    /// MIME type, optionally with parameters, e.g. `image/tiff; application=faxbw` (RFC 3949).
    public var contentType: String
    public var data: [UInt8]

    public init(filename: String, contentType: String, data: [UInt8]) {
        self.filename = filename
        self.contentType = contentType
        self.data = data
    }
}

/// An outgoing e-mail, rendered to RFC 5322 + MIME bytes with CRLF line endings.
public struct MailMessage: Sendable {
    public var from: MailAddress
    public var to: [MailAddress]
    public var cc: [MailAddress]
    public var subject: String
    public var date: Date
    /// With or without angle brackets; `makeMessageID` returns it with them.
    public var messageID: String
    /// Additional headers such as Auto-Submitted, Message-Context, X-Faxgate-*. Values are sanitized and
    /// encoded; invalid names and names this type writes itself (From, Bcc, Content-Type, …) are dropped.
    public var extraHeaders: [(String, String)]
    public var textBody: String
    public var attachments: [MailAttachment]

    public init(
        from: MailAddress, to: [MailAddress], cc: [MailAddress] = [], subject: String, date: Date = Date(),
        messageID: String = MailMessage.makeMessageID(domain: "localhost"), extraHeaders: [(String, String)] = [],
        textBody: String, attachments: [MailAttachment] = []
    ) {
        self.from = from
        self.to = to
        self.cc = cc
        self.subject = subject
        self.date = date
        self.messageID = messageID
        self.extraHeaders = extraHeaders
        self.textBody = textBody
        self.attachments = attachments
    }

    /// `<random@domain>`: a UUID is unique without coordination between processes.
    public static func makeMessageID(domain: String) -> String {
        let cleanDomain = String(String.UnicodeScalarView(domain.unicodeScalars.filter {
            (0x21...0x7E).contains($0.value) && !"<>@()[]\\\",;:".unicodeScalars.contains($0)
        }))
        return "<\(UUID().uuidString.lowercased())@\(cleanDomain.isEmpty ? "localhost" : cleanDomain)>"
    }

    /// Headers written by `render` itself; an extra header with one of these names would duplicate or
    /// contradict them (and a Bcc would disclose recipients), so it is dropped.
    static let reservedHeaderNames: Set<String> = [
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "content-type",
        "content-transfer-encoding", "content-disposition",
    ]

    static func isValidHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 76 && name.utf8.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }
    }

    /// RFC 5322 date-time in the local time zone, e.g. "Tue, 01 Jul 2025 14:03:07 +0200".
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    static func addressListTokens(_ addresses: [MailAddress], headerName: String) -> [String] {
        var tokens: [String] = []
        for (index, address) in addresses.enumerated() {
            var own = address.headerTokens(firstLimit: index == 0 ? MIMEEncoding.foldWidth - headerName.count - 2 : 75)
            if index < addresses.count - 1 { own[own.count - 1] += "," }
            tokens += own
        }
        return tokens
    }

    public func render() -> [UInt8] {
        var head = ""
        head += MIMEEncoding.foldedHeader("From", from.headerTokens(firstLimit: MIMEEncoding.foldWidth - 6))
        // RFC 5322 needs a destination header; an empty group says "recipients are in the envelope only".
        head += MIMEEncoding.foldedHeader("To", to.isEmpty ? ["undisclosed-recipients:;"] : Self.addressListTokens(to, headerName: "To"))
        if !cc.isEmpty { head += MIMEEncoding.foldedHeader("Cc", Self.addressListTokens(cc, headerName: "Cc")) }
        head += MIMEEncoding.foldedHeader("Subject", MIMEEncoding.unstructuredTokens(subject, headerName: "Subject"))
        head += "Date: \(Self.rfc5322Date(date))\r\n"
        var id = MIMEEncoding.sanitizeHeaderText(messageID).replacingOccurrences(of: " ", with: "")
        if !id.hasPrefix("<") { id = "<" + id + ">" }
        head += "Message-ID: \(id)\r\n"
        for (name, value) in extraHeaders
        where Self.isValidHeaderName(name) && !Self.reservedHeaderNames.contains(name.lowercased()) {
            head += MIMEEncoding.foldedHeader(name, MIMEEncoding.unstructuredTokens(value, headerName: name))
        }
        head += "MIME-Version: 1.0\r\n"

        var out = Array(head.utf8)
        let body = MIMEEncoding.quotedPrintable(MIMEEncoding.crlfNormalized(textBody))
        let textPart = Array("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8) + body
        if attachments.isEmpty {
            out += textPart
            // End the message with a line break; in a multipart the CRLF before a boundary belongs to the boundary.
            if body.count >= 2 && body.suffix(2) == [0x0D, 0x0A] { return out }
            return out + [0x0D, 0x0A]
        }
        // "=_" cannot occur in quoted-printable or base64 output, so the boundary never collides with content.
        let boundary = "=_faxgate_" + String(UInt64.random(in: .min ... .max), radix: 16)
        let multipartHead = MIMEEncoding.foldedHeader("Content-Type", ["multipart/mixed;", "boundary=\"\(boundary)\""])
            + "\r\nThis is a multi-part message in MIME format.\r\n"
        out += Array(multipartHead.utf8)
        out += Array("--\(boundary)\r\n".utf8) + textPart + [0x0D, 0x0A]
        for attachment in attachments {
            out += Array("--\(boundary)\r\n".utf8)
            out += Array(Self.attachmentHeaders(attachment).utf8)
            out += MIMEEncoding.base64Lines(attachment.data)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    /// `type/subtype` with optional `; attribute=value` parameters (token or quoted string), nothing else.
    static func isWellFormedContentType(_ value: String) -> Bool {
        let token = "[A-Za-z0-9!#$%&'*+.^_`|~-]+"
        let pattern = "^\(token)/\(token)( *; *\(token)=(\(token)|\"[ !#-\\[\\]-~]*\"))*$"
        return value.count <= 200 && value.range(of: pattern, options: .regularExpression) != nil
    }

    static func attachmentHeaders(_ attachment: MailAttachment) -> String {
        // Path separators in a remote-supplied name could make a careless client write outside its folder.
        let filename = MIMEEncoding.sanitizeHeaderText(attachment.filename)
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\\", with: "_")
        var contentType = attachment.contentType.trimmingSpaces()
        if !Self.isWellFormedContentType(contentType) { contentType = "application/octet-stream" }
        var result = MIMEEncoding.foldedHeader(
            "Content-Type", [contentType + ";"] + MIMEEncoding.parameterTokens("name", filename))
        result += "Content-Transfer-Encoding: base64\r\n"
        result += MIMEEncoding.foldedHeader("Content-Disposition", ["attachment;"] + MIMEEncoding.parameterTokens("filename", filename))
        return result + "\r\n"
    }
}
