import Foundation

/// Texts of the mails the mail → fax side sends: refusals and status reports, in German and English.
/// Each refusal says exactly why, in words a receptionist understands, and what to do instead.
public struct OutgoingMailText: Sendable {
    public var german: Bool
    public init(language: String) { german = language != "en" }

    public var language: String { german ? "de" : "en" }

    /// The reply's Subject quotes the sender's Subject only capped and cleaned (no CR/LF, control or bidi
    /// characters): whoever wrote it may not be who we answer.
    public func refusalSubject(_ original: String) -> String {
        let quoted = QuotedText.clean(original)
        return (german ? "Fax nicht gesendet" : "Fax not sent") + (quoted.isEmpty ? "" : ": " + quoted)
    }

    public func refusalBody(_ refusal: SubmissionProcessor.Refusal, original: String) -> String {
        refusalBody(reason: refusal.reason.text(language), original: original, detail: refusal.details.map { $0.text(language) })
    }

    public func refusalBody(reason: String, original: String, detail: [String]) -> String {
        let quoted = QuotedText.clean(original)
        var lines = [
            german ? "Ihre Nachricht wurde nicht als Fax gesendet und es wurde nichts gewählt."
                   : "Your message was not sent as a fax, and nothing was dialled.",
            "",
            (german ? "Grund: " : "Reason: ") + QuotedText.clean(reason, limit: 400),
        ]
        if !detail.isEmpty { lines.append(""); lines += detail.prefix(20).map { "  - " + QuotedText.clean($0, limit: 400) } }
        lines += [
            "",
            (german ? "Betreff Ihrer Nachricht: " : "Subject of your message: ") + (quoted.isEmpty ? (german ? "(kein Betreff)" : "(no subject)") : quoted),
            "",
            "-- ",
            german ? "Faxgate – automatisch erzeugte Antwort" : "Faxgate – automatically generated reply",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `uncertain`: the gateway stopped during the call (issue 11); `resendAt` nil means the administrator decides,
    /// else when it is sent again (`outgoing.uncertain`), `remaining` true when only the unconfirmed pages follow.
    public enum Status: Sendable { case sent, failed, retrying(next: Date), uncertain(resendAt: Date?, remaining: Bool) }

    public func statusSubject(_ status: Status, job: FaxJob) -> String {
        switch (status, german) {
        case (.sent, true): return "Fax an \(job.number) gesendet (\(job.pagesSent) \(job.pagesSent == 1 ? "Seite" : "Seiten"))"
        case (.sent, false): return "Fax to \(job.number) sent (\(job.pagesSent) \(job.pagesSent == 1 ? "page" : "pages"))"
        case (.failed, true): return "Fax an \(job.number) fehlgeschlagen: \(causeText(job.lastCause))"
        case (.failed, false): return "Fax to \(job.number) failed: \(causeText(job.lastCause))"
        case (.retrying, true): return "Fax an \(job.number): neuer Versuch folgt (\(causeText(job.lastCause)))"
        case (.retrying, false): return "Fax to \(job.number): will try again (\(causeText(job.lastCause)))"
        case (.uncertain, true): return "Fax an \(job.number): möglicherweise teilweise gesendet"
        case (.uncertain, false): return "Fax to \(job.number): may have been sent partly"
        }
    }

    public func statusBody(_ status: Status, job: FaxJob, timeZone: TimeZone = .current) -> String {
        var lines: [String] = []
        switch status {
        case .sent:
            lines.append(german ? "Ihr Fax wurde vollständig übertragen. Der Sendebericht liegt bei."
                                : "Your fax was transmitted completely. The transmission report is attached.")
        case .failed:
            lines.append(german ? "Ihr Fax konnte nicht übertragen werden; es werden keine weiteren Versuche unternommen. Der Sendebericht liegt bei."
                                : "Your fax could not be transmitted; no further attempts will be made. The transmission report is attached.")
        case .retrying(let next):
            lines.append((german ? "Der Versuch ist fehlgeschlagen; der nächste folgt um " : "The attempt failed; the next one follows at ")
                         + format(next, timeZone) + ".")
        case .uncertain(let resendAt, let remaining):
            lines.append(german ? "Das Gateway wurde während der Übertragung unterbrochen; Ihr Fax wurde möglicherweise teilweise gesendet."
                                : "The gateway was interrupted during the transmission; your fax may have been sent partly.")
            if let resendAt {
                let what = remaining ? (german ? "Die nicht bestätigten Seiten werden" : "The pages not confirmed will be")
                                     : (german ? "Es wird" : "It will be")
                lines.append(what + (german ? " um " + format(resendAt, timeZone) + " erneut gesendet." : " sent again at " + format(resendAt, timeZone) + "."))
            } else {
                lines.append(german ? "Es wird nicht automatisch erneut gesendet; der Administrator entscheidet."
                                    : "It is not sent again automatically; the administrator decides.")
            }
        }
        lines.append("")
        var rows: [(String, String, String)] = [
            ("Empfänger", "Recipient", "\(job.number) (\(job.dialString))"),
            ("Betreff", "Subject", subjectText(job.subject)),
            ("Kennung der Gegenstelle", "Remote station id", job.remoteStationID ?? "–"),
            ("Seiten übertragen", "Pages sent", "\(job.pagesSent) / \(job.pages)"),
            ("Auflösung", "Resolution", job.fine ? (german ? "fein (204 × 196 dpi)" : "fine (204 × 196 dpi)") : "normal (204 × 98 dpi)"),
            ("Übertragungsrate", "Signalling rate", job.bitRate.map { "\($0) bit/s" } ?? "–"),
            ("Versuche", "Attempts", "\(job.tries)"),
            ("Letzter Versuch", "Last attempt", job.dialedAt.map { format($0, timeZone) } ?? "–"),
            ("Ergebnis", "Result", resultText(job)),
            ("Auftrag", "Job", "#\(job.id ?? 0)"),
        ]
        // What the software modem reports (a controller hides most of it): shown only when known.
        var engineRows: [(String, String, String)] = []
        if let e = job.ecm { engineRows.append(("Fehlerkorrektur (ECM)", "Error correction (ECM)", e ? (german ? "ja" : "yes") : (german ? "nein" : "no"))) }
        if let c = job.compression { engineRows.append(("Kompression", "Compression", ReceptionMail.compressionName(c))) }
        if let n = job.ecmRetransmittedFrames, job.ecm == true || n > 0 { engineRows.append(("ECM-Wiederholungen", "ECM frames resent", "\(n)")) }
        rows.insert(contentsOf: engineRows, at: 6)
        let width = rows.map { (german ? $0.0 : $0.1).count }.max() ?? 0
        for row in rows {
            let label = german ? row.0 : row.1
            lines.append("\(label):\(String(repeating: " ", count: width - label.count + 1))\(row.2)")
        }
        lines += ["", "-- ", german ? "Faxgate – automatisch erzeugte Nachricht" : "Faxgate – automatically generated message"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The result of the last try in the reader's language. The transport's own words (`lastText`, English and
    /// possibly from the network) only go into English mails, after our text.
    public func resultText(_ job: FaxJob) -> String {
        let cause = causeText(job.lastCause)
        // A typed T.30 failure says what went wrong in the reader's language, in place of the transport's words.
        if job.state != .done, let failure = job.t30Failure {
            return "\(cause): \(failure.reason(.outgoing, language: language))"
        }
        guard !german, let detail = job.lastText.map({ QuotedText.clean($0, limit: 120) }), !detail.isEmpty,
              detail.lowercased() != cause.lowercased() else { return cause }
        return "\(cause) (\(detail))"
    }

    /// A job's Subject as shown to its sender; jobs from before kept "(no subject)" in English.
    public func subjectText(_ subject: String) -> String {
        let shown = QuotedText.clean(subject, limit: 120)
        return shown.isEmpty || shown == "(no subject)" ? (german ? "(kein Betreff)" : "(no subject)") : shown
    }

    public func causeText(_ cause: String?) -> String {
        switch (SendOutcome.Cause(rawValue: cause ?? ""), german) {
        case (.success?, true): return "gesendet"
        case (.success?, false): return "sent"
        case (.busy?, true): return "besetzt"
        case (.busy?, false): return "busy"
        case (.noAnswer?, true): return "keine Antwort"
        case (.noAnswer?, false): return "no answer"
        case (.faxProtocolError?, true): return "Faxübertragung gestört"
        case (.faxProtocolError?, false): return "fax transmission error"
        case (.networkFailure?, true): return "Netzstörung"
        case (.networkFailure?, false): return "network failure"
        case (.invalidNumber?, true): return "Nummer ungültig"
        case (.invalidNumber?, false): return "invalid number"
        case (.rejected?, true): return "Anruf abgewiesen"
        case (.rejected?, false): return "call rejected"
        case (.localError?, true): return "interner Fehler"
        case (.localError?, false): return "local error"
        case (.blockedByPolicy?, true): return "von den Wählregeln gesperrt, nicht gewählt"
        case (.blockedByPolicy?, false): return "blocked by the dial policy, not dialled"
        case (nil, true): return cause == "canceled" ? "abgebrochen" : "unbekannt"
        case (nil, false): return cause == "canceled" ? "canceled" : "unknown"
        }
    }

    func format(_ date: Date, _ tz: TimeZone) -> String {
        let f = DateFormatter()
        f.timeZone = tz
        f.locale = Locale(identifier: german ? "de_DE" : "en_GB")
        f.dateFormat = german ? "dd.MM.yyyy HH:mm:ss zzz" : "yyyy-MM-dd HH:mm:ss zzz"
        return f.string(from: date)
    }
}
