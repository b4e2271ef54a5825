import Foundation

/// The admin's mail about refusals nobody was told about (backscatter protection): counts by kind and the
/// senders, redacted (first letter of the local part and the domain), in the gateway's language.
struct AdminDigest {
    var refusals: [IntakeRecord]
    var language: String

    private var german: Bool { language != "en" }

    var subject: String {
        german ? "Faxgate: \(refusals.count) abgelehnte Fax-Aufträge ohne Antwort" : "Faxgate: \(refusals.count) refused fax orders not answered"
    }

    static func redact(_ address: String?) -> String {
        guard let address, let at = address.lastIndex(of: "@") else { return "-" }
        let local = address[..<at], domain = address[address.index(after: at)...]
        return (local.first.map { String($0) } ?? "") + "…@" + domain
    }

    var body: String {
        let suppressed = refusals.filter { $0.reply == .suppressed }.count
        let limited = refusals.filter { $0.reply == .rateLimited }.count
        let alerts = refusals.filter(\.adminAlert).count
        var lines: [String] = []
        if german {
            lines.append("Diese Aufträge wurden abgelehnt, ohne dem Absender zu antworten (die Absenderadresse ist nicht bestätigt, oder das Antwortlimit ist erreicht):")
            lines.append("")
            lines.append("ohne Antwort (Absender nicht bestätigt): \(suppressed)")
            lines.append("ohne Antwort (Antwortlimit erreicht): \(limited)")
            if alerts > 0 {
                lines.append("")
                lines.append("ACHTUNG: \(alerts) Nachricht(en) enthielten ein Authentication-Results-Feld mit der vertrauenswürdigen authserv-id unterhalb der Received-Zeile des Mailservers. Der Mailserver entfernt solche Felder nicht (RFC 8601 Abschnitt 5). Bitte die Konfiguration des Mailservers prüfen.")
            }
            lines.append("")
            lines.append("Absender (gekürzt):")
        } else {
            lines.append("These orders were refused without answering the sender (the sender address is not proven, or the reply limit was reached):")
            lines.append("")
            lines.append("not answered (sender not proven): \(suppressed)")
            lines.append("not answered (reply limit reached): \(limited)")
            if alerts > 0 {
                lines.append("")
                lines.append("ATTENTION: \(alerts) message(s) carried an Authentication-Results header with the trusted authserv-id below the mail server's Received line. The mail server does not strip such headers (RFC 8601 section 5). Please check the mail server's configuration.")
            }
            lines.append("")
            lines.append("Senders (shortened):")
        }
        var counts: [String: Int] = [:]
        for r in refusals { counts[Self.redact(r.replyAddress), default: 0] += 1 }
        for (sender, n) in counts.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).prefix(50) {
            lines.append("  \(sender): \(n)")
        }
        lines.append("")
        lines.append(german ? "Einzelheiten: faxgate intake" : "Details: faxgate intake")
        return lines.joined(separator: "\n") + "\n"
    }
}
