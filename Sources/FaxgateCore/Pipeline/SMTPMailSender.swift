import MailOut

/// The mail-sender seam implemented with libcurl (MailOut). curl blocks, so it runs on its own thread.
public final class SMTPMailSender: MailSender {
    private let client: SMTPClient
    private let worker = BlockingWorker(name: "faxgate-smtp")

    public init(settings: SMTPSettings) {
        client = SMTPClient(settings: settings)
    }

    public func send(envelopeFrom: String, recipients: [String], message: [UInt8]) async throws(MailSendFailure) {
        let client = self.client
        do {
            try await worker.run { () throws(SMTPError) in
                try client.send(envelopeFrom: envelopeFrom, recipients: recipients, message: message)
            }
        } catch {
            // Without a verdict from the server (refused, TLS, timeout) the cause is on our side or the
            // network's; keep retrying so an admin's fix takes effect without re-sending anything by hand.
            // Only a 5xx answer about this very message is final.
            let final = !error.isTransient && (error.smtpResponseCode.map { $0 >= 500 } ?? false)
            throw MailSendFailure(isTransient: !final, description: error.description)
        }
    }

    deinit { worker.stop() }
}
