import Foundation

/// Art. 30 GDPR record of processing activities, generated from the live configuration: what this
/// installation stores (only categories it is configured for or actually holds), why, who receives it
/// (the configured servers), how long it is kept, and the technical measures in force.
public struct ProcessingRecord: Sendable {
    public var config: Configuration
    /// Retention categories for which the database holds data right now.
    public var storedCategories: Set<String>
    public var categories: [String]

    public init(config: Configuration, storedCategories: Set<String>, categories: [String]) {
        self.config = config; self.storedCategories = storedCategories; self.categories = categories
    }

    struct Text { var de: String; var en: String; func t(_ l: String) -> String { l == "de" ? de : en } }

    struct DataCategory { var key: String; var data: Text; var purpose: Text; var active: Bool }

    var dataCategories: [DataCategory] {
        let sending = config.configuresOutgoing
        return [
            DataCategory(key: "received_faxes",
                         data: Text(de: "Empfangene Faxe: Inhalt (SFF/PDF/TIFF), Rufnummer und Kennung (TSI) des Absenders, angerufene Nebenstelle, Zeitpunkt, Seitenzahl, Übertragungsdaten; E-Mail-Adressen der Empfänger der Nebenstelle",
                                    en: "Received faxes: content (SFF/PDF/TIFF), caller number and station id (TSI), called extension, time, pages, transmission data; e-mail addresses of the extension's recipients"),
                         purpose: Text(de: "Zustellung eingehender Faxe per E-Mail an die zuständige Nebenstelle; Nachweis des Empfangs",
                                       en: "Delivering incoming faxes by e-mail to the extension called; proof of receipt"),
                         active: true),
            DataCategory(key: "sent_faxes",
                         data: Text(de: "Gesendete Faxe: Inhalt, Zielrufnummer, Empfängername, Absender-E-Mail, Sendebericht",
                                    en: "Sent faxes: content, destination number, recipient name, sender's e-mail address, send report"),
                         purpose: Text(de: "Versand von Faxen im Auftrag der Nutzer (Mail → Fax); Sendenachweis",
                                       en: "Sending faxes on behalf of users (mail → fax); proof of transmission"),
                         active: sending || storedCategories.contains("sent_faxes")),
            DataCategory(key: "voicemails",
                         data: Text(de: "Sprachnachrichten: Audio, Rufnummer des Anrufers, Zeitpunkt", en: "Voicemails: audio, caller number, time"),
                         purpose: Text(de: "Zustellung von Sprachnachrichten per E-Mail", en: "Delivering voicemails by e-mail"),
                         active: storedCategories.contains("voicemails")),
            DataCategory(key: "rejected_mails",
                         data: Text(de: "Abgewiesene E-Mails (Mail → Fax): Rohnachricht, Absenderadresse, Grund",
                                    en: "Rejected mails (mail → fax): raw message, sender address, reason"),
                         purpose: Text(de: "Nachvollziehbarkeit abgewiesener Sendeaufträge", en: "Accounting for refused send requests"),
                         active: sending),
            DataCategory(key: "journal",
                         data: Text(de: "Verbindungsjournal: Rufnummern, Zeitpunkt, Ergebnis abgewiesener oder fehlgeschlagener Anrufe",
                                    en: "Call journal: numbers, time, outcome of rejected or failed calls"),
                         purpose: Text(de: "Betrieb, Fehlersuche, Missbrauchserkennung", en: "Operation, troubleshooting, abuse detection"),
                         active: true),
            DataCategory(key: "logs",
                         data: Text(de: "Protokolldateien; Rufnummern, Adressen, Kennungen und Namen sind durch Pseudonyme ersetzt",
                                    en: "Log files; numbers, addresses, station ids and names replaced by pseudonyms"),
                         purpose: Text(de: "Betrieb und Fehlersuche", en: "Operation and troubleshooting"),
                         active: config.log.files),
            DataCategory(key: "snapshots",
                         data: Text(de: "Support-Snapshots: redigierte Protokolle, Konfiguration ohne Geheimnisse, Statistiken (AES-256-verschlüsselt)",
                                    en: "Support snapshots: redacted logs, configuration without secrets, statistics (AES-256 encrypted)"),
                         purpose: Text(de: "Unterstützung durch den Hersteller bei Störungen", en: "Vendor support with faults"),
                         active: true),
        ]
    }

    var recipients: [(Text, String)] {
        var r: [(Text, String)] = [
            (Text(de: "Mailserver (SMTP, Zustellung)", en: "Mail server (SMTP, delivery)"), "\(config.smtp.host):\(config.smtp.port) (\(config.smtp.security))"),
            (Text(de: "Empfänger der Nebenstellen", en: "Extension recipients"),
             Set(config.extensions.flatMap(\.email).map { String($0.split(separator: "@").last ?? "") }).sorted().map { "@" + $0 }.joined(separator: ", ")),
        ]
        if config.capi.driver != "standard", let host = config.capi.host {
            r.append((Text(de: "CAPI-Controller (Telefonie)", en: "CAPI controller (telephony)"), "\(host):\(config.capi.effectivePort) (\(config.capi.driver))"))
        } else {
            r.append((Text(de: "ISDN-Anschluss über lokalen CAPI-Controller", en: "ISDN line through the local CAPI controller"), "/dev/capi20"))
        }
        if let support = config.snapshot.supportAddress {
            r.append((Text(de: "Hersteller-Support (nur Snapshots, verschlüsselt, Passwort getrennt)", en: "Vendor support (snapshots only, encrypted, passphrase sent separately)"), support))
        }
        let db = config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite"
        r.append((Text(de: "Datenbank (lokal)", en: "Database (local)"), "\(config.storage.driver): \(db)"))
        return r
    }

    var measures: [Text] {
        var m = [
            Text(de: "Transportverschlüsselung zum Mailserver: \(config.smtp.security == "none" ? "keine (nur lokaler Relay auf diesem Rechner)" : config.smtp.security.uppercased() + " mit Zertifikatsprüfung")",
                 en: "Transport encryption to the mail server: \(config.smtp.security == "none" ? "none (local relay on this machine only)" : config.smtp.security.uppercased() + " with certificate verification")"),
            Text(de: "Protokolle redigiert (\(config.log.redaction.joined(separator: ", ")), Stationskennungen, Namen, Inhalte); \(config.privacy.pseudonyms ? "Pseudonyme per HMAC-SHA256 mit Installationsschlüssel" : "Platzhalter ohne Pseudonyme")",
                 en: "Logs redacted (\(config.log.redaction.joined(separator: ", ")), station ids, names, content); \(config.privacy.pseudonyms ? "pseudonyms by HMAC-SHA256 with a per-installation key" : "placeholders without pseudonyms")"),
            Text(de: "Automatische Löschung nach Fristen inkl. aller abgeleiteten Dateien; physische Löschung in der Datenbank (secure_delete, VACUUM, WAL gekürzt); Löschprotokoll nur mit Anzahlen",
                 en: "Automatic deletion by retention period including every derived file; physical deletion in the database (secure_delete, VACUUM, WAL truncated); audit trail with counts only"),
            Text(de: "Support-Snapshots als AES-256-ZIP, Passwort ≥ 128 Bit, getrennt übermittelt",
                 en: "Support snapshots as AES-256 ZIP, passphrase ≥ 128 bits, sent separately"),
            Text(de: "Keine Verbindungen außer zu den konfigurierten Servern (keine Telemetrie, keine Update-Prüfung)",
                 en: "No connections except to the configured servers (no telemetry, no update checks)"),
            Text(de: "Dienst läuft als unprivilegierter Benutzer; Spool-Verzeichnis nicht weltlesbar", en: "Service runs as an unprivileged user; spool directory not world-readable"),
        ]
        if config.retention.exportBeforeDelete {
            m.append(Text(de: "Archivierung vor Löschung nach \(config.archiveDirectory) (gesetzliche Aufbewahrungspflichten)",
                          en: "Archiving before deletion to \(config.archiveDirectory) (legal retention duties)"))
        }
        return m
    }

    func retention(_ key: String, _ l: String) -> String {
        let days = config.retention.days(for: key)
        return days == 0 ? (l == "de" ? "unbegrenzt (0 = behalten)" : "unlimited (0 = keep)") : (l == "de" ? "\(days) Tage ab Erstellung" : "\(days) days from creation")
    }

    public func markdown(language l: String) -> String {
        let de = l == "de"
        var out = de ? "# Verzeichnis von Verarbeitungstätigkeiten (Art. 30 DSGVO) — Faxgate\n\n" : "# Record of processing activities (Art. 30 GDPR) — Faxgate\n\n"
        out += de ? "Erzeugt aus der laufenden Konfiguration am \(ISO8601DateFormatter().string(from: Date())).\n\n"
                  : "Generated from the live configuration on \(ISO8601DateFormatter().string(from: Date())).\n\n"
        out += de ? "## Datenkategorien, Zwecke und Löschfristen\n\n| Kategorie | Daten | Zweck | Löschfrist |\n|---|---|---|---|\n"
                  : "## Data categories, purposes and retention\n\n| category | data | purpose | retention |\n|---|---|---|---|\n"
        for c in dataCategories where c.active {
            out += "| \(c.key) | \(c.data.t(l)) | \(c.purpose.t(l)) | \(retention(c.key, l)) |\n"
        }
        out += de ? "\nBetroffene: Anrufer/Faxabsender, Faxempfänger, Mitarbeitende der Nebenstellen (\(config.extensions.count) Nebenstellen).\n"
                  : "\nData subjects: callers/fax senders, fax recipients, staff at the extensions (\(config.extensions.count) extensions).\n"
        out += de ? "\n## Empfänger\n\n" : "\n## Recipients\n\n"
        for (what, target) in recipients { out += "- \(what.t(l)): \(target)\n" }
        out += de ? "\n## Technische und organisatorische Maßnahmen\n\n" : "\n## Technical and organisational measures\n\n"
        for m in measures { out += "- \(m.t(l))\n" }
        let holds = config.privacy.legalHolds.count
        if holds > 0 { out += de ? "\nGesetzliche Aufbewahrung (Legal Hold) für \(holds) Betroffene konfiguriert.\n" : "\nLegal hold configured for \(holds) subject(s).\n" }
        return out
    }

    public func json(language l: String) throws -> String {
        let object: [String: Any] = [
            "language": l,
            "generated": ISO8601DateFormatter().string(from: Date()),
            "categories": dataCategories.filter(\.active).map { c in
                ["key": c.key, "data": c.data.t(l), "purpose": c.purpose.t(l), "retention_days": config.retention.days(for: c.key)] as [String: Any]
            },
            "recipients": recipients.map { ["recipient": $0.0.t(l), "target": $0.1] },
            "technical_measures": measures.map { $0.t(l) },
            "extensions": config.extensions.count,
            "legal_holds": config.privacy.legalHolds.count,
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self)
    }
}

extension Configuration {
    /// Whether this configuration sends faxes (mail → fax); decided from the raw keys so the record does
    /// not depend on the outgoing module's types.
    var configuresOutgoing: Bool {
        let mirror = Mirror(reflecting: self)
        guard let outgoing = mirror.children.first(where: { $0.label == "outgoing" })?.value else { return false }
        return "\(outgoing)".contains("enabled: true")
    }
}
