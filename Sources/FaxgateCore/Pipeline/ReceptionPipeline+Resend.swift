import Foundation
import MailOut

/// What `ReceptionPipeline.resendMail` did; the web shows it in the reader's language.
public enum MailResendResult: Sendable, Equatable {
    /// Queued in the outbox for these addresses (the extension's current ones).
    case queued(recipients: [String])
    case notFound
    /// Only a received fax has a mail to send again (not a voice call, not an outgoing call).
    case notAReceivedFax
    /// Still being received, converted or in the outbox, or rejected at the door: nothing to send again now.
    case notFinished(CallRecord.State)
    /// Retention removed the received document.
    case documentGone
    /// The call's extension is no longer configured.
    case extensionGone(String)
}

extension ReceptionPipeline {
    /// Mails a received fax again, on an admin's request: converted afresh from the spool with the same code as the
    /// first mail, to the addresses `ext` has now (the caller passes the extension from the live configuration;
    /// nil = the one this pipeline was started with), through the durable outbox. The row goes to `mail_queued`
    /// and follows the outbox's result like the first mail. The outbox id carries the second of the request, so a
    /// form sent twice in the same second queues one mail.
    public func resendMail(callID: Int64, extension current: Extension?, requestedBy actor: String) async throws -> MailResendResult {
        guard let record = try await storage.call(id: callID) else { return .notFound }
        guard record.direction == .incoming, record.kind == .fax else { return .notAReceivedFax }
        guard record.state == .mailed || record.state == .mailFailed else { return .notFinished(record.state) }
        guard let name = record.extensionName,
              let ext = current ?? directory.extensions.first(where: { $0.name == name }) else {
            return .extensionGone(record.extensionName ?? "-")
        }
        guard let path = record.spoolPath, FileManager.default.fileExists(atPath: path) else { return .documentGone }
        var mail = try composeMail(record, ext: ext)
        let outboxID = Self.outboxID(callID: callID, startedAt: record.startedAt) + "-again-"
            + Outbox.letterStamp(UInt64(max(0, Date().timeIntervalSince1970)))
        let messageID = try await queueMail(to: ext, callID: callID, startedAt: record.startedAt, context: "fax-message",
                                            subject: mail.subject, body: mail.body, attachments: mail.attachments, outboxID: outboxID)
        mail.record.mailMessageID = messageID
        // Addresses stay out of the journal (they are in the configuration and the audit names the request).
        try await recordMailQueued(mail.record, event: "mail queued again to the extension's \(ext.recipients.count) current address(es), requested by \(actor)")
        logger.notice("mail of a received fax queued again on request", metadata: ["call": "\(callID)", "outbox": "\(outboxID)"])
        return .queued(recipients: ext.recipients)
    }
}
