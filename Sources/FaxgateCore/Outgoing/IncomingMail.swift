import Foundation

/// A mail asking for a fax, as an intake plugin hands it to the core: already parsed, bounded and decoded.
/// The core never sees libetpan; the IMAP and drop-directory intakes both produce this.
public struct IncomingMail: Sendable {
    public struct Attachment: Sendable {
        public var filename: String?
        /// Lowercased type/subtype.
        public var contentType: String
        public var data: [UInt8]
        public init(filename: String?, contentType: String, data: [UInt8]) {
            self.filename = filename; self.contentType = contentType; self.data = data
        }
        /// How a reply names this part.
        public var label: String { filename.map { "'\($0)' (\(contentType))" } ?? contentType }
    }

    public var fromAddress: String?
    public var fromName: String?
    /// Envelope sender (Return-Path); "" = a bounce or automatic mail: never answered.
    public var returnPath: String?
    public var to: [String]
    public var cc: [String]
    public var subject: String
    public var messageID: String?
    public var headers: [(name: String, value: String)]
    public var textBody: String?
    public var htmlBody: String?
    public var attachments: [Attachment]
    /// Findings that mean the content may not be what the sender sent (see MailIn's `ParsedMail.damage`).
    public var damage: [String]

    public init(fromAddress: String?, fromName: String? = nil, returnPath: String? = nil, to: [String], cc: [String] = [],
                subject: String, messageID: String? = nil, headers: [(name: String, value: String)] = [], textBody: String? = nil,
                htmlBody: String? = nil, attachments: [Attachment] = [], damage: [String] = []) {
        self.fromAddress = fromAddress; self.fromName = fromName; self.returnPath = returnPath; self.to = to; self.cc = cc
        self.subject = subject; self.messageID = messageID; self.headers = headers; self.textBody = textBody
        self.htmlBody = htmlBody; self.attachments = attachments; self.damage = damage
    }

    public func header(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    /// RFC 3834: never answer automatic mail, bounces or lists — that is how mail loops start.
    public var isAutomatic: Bool {
        if returnPath == "" || returnPath == "<>" { return true }
        if let auto = header("Auto-Submitted").first, auto.lowercased().trimmingCharacters(in: .whitespaces) != "no" { return true }
        if let precedence = header("Precedence").first?.lowercased(), ["bulk", "list", "junk"].contains(precedence) { return true }
        return !header("List-Id").isEmpty
    }

    /// The body text a sender typed now: without quoted earlier messages, attribution lines, Outlook header
    /// blocks and the signature (see `MailBodyText`). nil if nothing of the sender's own remains.
    public var meaningfulText: String? {
        guard let text = textBody else { return nil }
        let own = MailBodyText.own(text)
        return own.isEmpty ? nil : own
    }
}
