/// Hands a finished RFC 5322 message to the outgoing mail server.
public protocol MailSender: Sendable {
    func send(envelopeFrom: String, recipients: [String], message: [UInt8]) async throws(MailSendFailure)
}

public struct MailSendFailure: Error, Sendable, CustomStringConvertible {
    /// Worth trying again later (server down, 4xx). Permanent failures need the admin.
    public var isTransient: Bool
    public var description: String
    public init(isTransient: Bool, description: String) { self.isTransient = isTransient; self.description = description }
}
