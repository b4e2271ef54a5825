import FaxRender
import Foundation

/// The part of a mail a reason is about, named the way the reader's language names it.
public enum MailPart: Sendable, Equatable {
    case text
    case html
    /// An attachment: its file name (sender-written, shown capped and cleaned) and its type.
    case attachment(filename: String?, contentType: String)
    case cover

    public func text(_ language: String) -> String {
        let de = language != "en"
        switch self {
        case .text: return de ? "der Nachrichtentext" : "the message text"
        case .html: return de ? "der Nachrichtentext (HTML)" : "the message text (HTML)"
        case .cover: return de ? "das Deckblatt" : "the cover page"
        case .attachment(let name, let type):
            let quoted = name.map { de ? "„\(QuotedText.clean($0, limit: 60))“" : "'\(QuotedText.clean($0, limit: 60))'" }
            let shown = quoted.map { "\($0) (\(QuotedText.clean(type, limit: 60)))" } ?? QuotedText.clean(type, limit: 60)
            return (de ? "die Anlage " : "the attachment ") + shown
        }
    }
}

/// Why a mail was not faxed, for the parts of `SubmissionProcessor.plan` that are about content and rendering.
/// Typed so that the refusal is written in the reader's language only when the reply is made.
public enum SubmissionReason: LocalizedReason, Equatable {
    case noSuchExtension(String)
    case extensionNotConfigured(String)
    case numberNotUnderstood
    case noNumber
    case numberNotDiallable
    case damaged
    case unsupportedAttachment(MailPart)
    case skipUnsupportedHint
    case nothingToFax
    /// The mail has text, but it is not faxed (X-Fax-Body: no, or the extension's `fax_body: never`), and no attachment.
    case textNotFaxed
    case tooManyPages(limit: Int)
    case badSendAt(String)
    case notConverted(MailPart, RenderError)
    case coverFailed(RenderError)
    /// Refused by an intake before parsing.
    case tooLarge(megabytes: Int, limit: Int)
    case stoppedGateway
    case unreadable

    public func text(_ language: String) -> String {
        let de = language != "en"
        switch self {
        case .noSuchExtension(let name):
            return de ? "es gibt keine Nebenstelle namens „\(QuotedText.clean(name))“" : "there is no extension named \(QuotedText.clean(name))"
        case .extensionNotConfigured(let name):
            return de ? "die Nebenstelle „\(name)“ ist nicht eingerichtet" : "the extension \(name) is not configured"
        case .numberNotUnderstood:
            return de ? "eine Faxnummer konnte nicht verstanden werden" : "a fax number could not be understood"
        case .noNumber:
            return de ? "weder in den Empfängern noch im Betreff wurde eine Faxnummer gefunden"
                      : "no fax number found in the recipients or the subject"
        case .numberNotDiallable:
            return de ? "eine Nummer darf nicht gewählt werden" : "a number may not be dialled"
        case .damaged:
            return de ? "die Nachricht ist beschädigt (z. B. unvollständig übertragene Anlagen) und wurde nicht gefaxt"
                      : "the message is damaged (for example an attachment arrived incomplete) and was not faxed"
        case .unsupportedAttachment(let part):
            return de ? "\(part.text(language).capitalizedFirst) kann nicht gefaxt werden (möglich sind PDF, PostScript, TIFF, JPEG, PNG und Text)"
                      : "\(part.text(language)) cannot be faxed (supported: PDF, PostScript, TIFF, JPEG, PNG, text)"
        case .skipUnsupportedHint:
            return de ? "Senden Sie sie als PDF, oder fügen Sie die Kopfzeile „X-Fax-Skip-Unsupported: yes“ hinzu, um den Rest ohne sie zu faxen."
                      : "Send it as PDF, or add the header \"X-Fax-Skip-Unsupported: yes\" to fax the rest without it."
        case .nothingToFax:
            return de ? "es gibt nichts zu faxen: die Nachricht hat weder eine Anlage noch Text"
                      : "there is nothing to fax: no attachment and no text in the message"
        case .textNotFaxed:
            return de ? "es gibt nichts zu faxen: die Nachricht hat keine Anlage, und ihr Text wird nicht gefaxt (Kopfzeile „X-Fax-Body“ oder Einstellung der Nebenstelle)"
                      : "there is nothing to fax: the message has no attachment, and its text is not faxed (X-Fax-Body: no, or the extension's setting)"
        case .tooManyPages(let limit):
            return de ? "das Dokument hat mehr als \(limit) Seiten, die Grenze für ein Fax"
                      : "the document has more than \(limit) pages, the limit for one fax"
        case .badSendAt(let value):
            return de ? "X-Fax-Send-At „\(QuotedText.clean(value, limit: 40))“ ist keine Zeitangabe wie 2026-11-23T08:00:00+01:00"
                      : "X-Fax-Send-At '\(QuotedText.clean(value, limit: 40))' is not a time like 2026-11-23T08:00:00+01:00"
        case .notConverted(let part, let error):
            return de ? "\(part.text(language).capitalizedFirst) konnte nicht umgewandelt werden: \(error.text(language))"
                      : "\(part.text(language)) could not be converted: \(error.text(language))"
        case .coverFailed(let error):
            return de ? "das Deckblatt konnte nicht erstellt werden: \(error.text(language))"
                      : "the cover page could not be made: \(error.text(language))"
        case .tooLarge(let mb, let limit):
            return de ? "die Nachricht ist \(mb) MB groß; die Grenze für einen Faxauftrag ist \(limit) MB"
                      : "the message is \(mb) MB; the limit for a fax order is \(limit) MB"
        case .stoppedGateway:
            return de ? "die Nachricht konnte nicht verarbeitet werden: ihre Umwandlung hat das Gateway dreimal angehalten"
                      : "the message could not be processed: converting it stopped the gateway three times"
        case .unreadable:
            return de ? "die Nachricht konnte nicht gelesen werden (ihr Aufbau ist fehlerhaft)"
                      : "the message could not be read (its structure is broken)"
        }
    }
}

/// Text from a mail (Subject, file names, header values) as it may appear in our replies: one line, no control
/// or bidi characters, and short — a reply must never carry an attacker's text at length.
public enum QuotedText {
    public static func clean(_ text: String, limit: Int = 80) -> String {
        var out = ""
        var lastSpace = false
        for scalar in text.unicodeScalars {
            let props = scalar.properties
            if props.generalCategory == .control || props.generalCategory == .lineSeparator
                || props.generalCategory == .paragraphSeparator || props.isWhitespace {
                if !lastSpace && !out.isEmpty { out.unicodeScalars.append(" "); lastSpace = true }
                continue
            }
            // Format characters: bidi embeddings/overrides/isolates, zero-width characters, soft hyphen.
            if props.generalCategory == .format { continue }
            out.unicodeScalars.append(scalar)
            lastSpace = false
        }
        out = out.trimmingCharacters(in: .whitespaces)
        return out.count > limit ? String(out.prefix(max(1, limit - 1))) + "…" : out
    }
}

extension String {
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
